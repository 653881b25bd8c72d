package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"qledger/chain"
	"qledger/fsm"
	"qledger/shard"
)

// Level is a read consistency level.
type Level string

// Read consistency levels.
const (
	// Stale reads whatever replica answers; it may lag the leader.
	Stale Level = "stale"
	// Default reads on the leader after it confirms it still leads
	// (raft VerifyLeader, and a majority accepting its appends sent
	// after the read began): no stale leader, no extra log entry.
	Default Level = "default"
	// Linearizable reads on the leader after a raft barrier, so every
	// write acknowledged before the read started is visible.
	Linearizable Level = "linearizable"
)

// ParseLevel accepts "", "stale", "default" and "linearizable".
func ParseLevel(s string) (Level, error) {
	switch Level(s) {
	case "":
		return Default, nil
	case Stale, Default, Linearizable:
		return Level(s), nil
	}
	return "", fmt.Errorf("%w: consistency level %q (want stale, default or linearizable)", ErrBadRequest, s)
}

// query ops.
const (
	opHead        = "head"
	opBlock       = "block"
	opBlocks      = "blocks"
	opTx          = "tx"
	opConsistency = "consistency"
	opNodes       = "nodes"
	opItem        = "item"
	opItems       = "items"
	opFunctions   = "functions"
	opInvocation  = "invocation"
)

// Query is the internal RPC form of a read.
type Query struct {
	Op     string     `json:"op"`
	Group  int        `json:"group"`
	Level  Level      `json:"level"`
	Height uint64     `json:"height,omitempty"`
	From   uint64     `json:"from,omitempty"`
	To     uint64     `json:"to,omitempty"`
	Limit  int        `json:"limit,omitempty"`
	ID     chain.Hash `json:"id,omitempty"`
	Hops   int        `json:"hops,omitempty"`
	DataID string     `json:"data_id,omitempty"`
	Filter string     `json:"filter,omitempty"`
	// NodeLevel is the Merkle level of an opNodes read (From and Limit
	// give the first index and the count).
	NodeLevel uint8 `json:"node_level,omitempty"`
}

// QueryResult carries whichever fields the op fills.
type QueryResult struct {
	Header   []byte             `json:"header,omitempty"` // encoded head; nil if the chain is empty
	Blocks   [][]byte           `json:"blocks,omitempty"`
	Tx       *fsm.TxRecord      `json:"tx,omitempty"`
	RootFrom chain.Hash         `json:"root_from"`
	RootTo   chain.Hash         `json:"root_to"`
	Proof    []chain.Hash       `json:"proof,omitempty"` // also opNodes' hashes
	Item     *fsm.ItemMeta      `json:"item,omitempty"`
	Segments []fsm.TxRecord     `json:"segments,omitempty"`
	Items    []fsm.ItemMeta     `json:"items,omitempty"`
	Funcs    []fsm.FunctionMeta `json:"functions,omitempty"`
	// Invocation is a committed execution record (opInvocation).
	Invocation *InvokeResult `json:"invocation,omitempty"`
	// A head read on a node with TLS is signed by the node that served it
	// (the leader, at the default and linearizable levels).
	Signature []byte   `json:"signature,omitempty"`
	Signer    string   `json:"signer,omitempty"`
	CertChain [][]byte `json:"cert_chain,omitempty"`
	SignedAt  int64    `json:"signed_at,omitempty"`
}

// ConsistencyProof proves the group's log at size From is a prefix of the
// log at size To.
type ConsistencyProof struct {
	From, To         uint64
	RootFrom, RootTo chain.Hash
	Hashes           []chain.Hash
}

// MaxBlocksPerRead caps one Blocks read.
const MaxBlocksPerRead = 1000

// SignedHead is a group's head with the signature of the node that served
// it over chain.HeadStatement (empty without TLS or for an empty chain).
type SignedHead struct {
	Header    chain.Header
	OK        bool // false: the chain is empty
	Signature []byte
	Signer    string   // node ID
	CertChain [][]byte // the signer's certificate chain, DER, leaf first
	SignedAt  int64    // when it was signed, Unix nanoseconds (the signer's clock)
}

// SignedHead returns group g's head as signed by the node serving the
// read: at the default and linearizable levels, g's leader.
func (n *Node) SignedHead(ctx context.Context, g int, level Level) (SignedHead, error) {
	res, err := n.query(ctx, Query{Op: opHead, Group: g, Level: level})
	if err != nil || res.Header == nil {
		return SignedHead{}, err
	}
	h, err := chain.DecodeHeader(res.Header)
	if err != nil {
		return SignedHead{}, fmt.Errorf("%w: head: %v", ErrStore, err)
	}
	return SignedHead{Header: h, OK: true, Signature: res.Signature, Signer: res.Signer, CertChain: res.CertChain, SignedAt: res.SignedAt}, nil
}

// Invocation returns the committed execution record of caller's request
// ID, searching every group; ErrNotFound if none has it.
func (n *Node) Invocation(ctx context.Context, caller string, requestID [32]byte) (InvokeResult, error) {
	var last error
	for g := 0; g < n.cfg.Groups; g++ {
		res, err := n.query(ctx, Query{Op: opInvocation, Group: g, ID: requestID, Filter: caller})
		if err == nil && res.Invocation != nil {
			return *res.Invocation, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			last = err
		}
	}
	if last != nil {
		return InvokeResult{}, last
	}
	return InvokeResult{}, fmt.Errorf("%w: no execution record of request %x", ErrNotFound, requestID[:6])
}

// Head returns group g's newest header; ok is false if it has no blocks.
func (n *Node) Head(ctx context.Context, g int, level Level) (h chain.Header, ok bool, err error) {
	res, err := n.query(ctx, Query{Op: opHead, Group: g, Level: level})
	if err != nil || res.Header == nil {
		return h, false, err
	}
	h, err = chain.DecodeHeader(res.Header)
	if err != nil {
		return h, false, fmt.Errorf("%w: head: %v", ErrStore, err)
	}
	return h, true, nil
}

// Block returns group g's encoded block at height.
func (n *Node) Block(ctx context.Context, g int, height uint64, level Level) ([]byte, error) {
	res, err := n.query(ctx, Query{Op: opBlock, Group: g, Level: level, Height: height})
	if err != nil {
		return nil, err
	}
	if len(res.Blocks) != 1 {
		return nil, fmt.Errorf("%w: block %d of group %d", ErrNotFound, height, g)
	}
	return res.Blocks[0], nil
}

// Blocks returns up to limit encoded blocks of group g from height from.
func (n *Node) Blocks(ctx context.Context, g int, from uint64, limit int, level Level) ([][]byte, error) {
	if limit < 1 || limit > MaxBlocksPerRead {
		return nil, fmt.Errorf("%w: limit must be 1..%d", ErrBadRequest, MaxBlocksPerRead)
	}
	res, err := n.query(ctx, Query{Op: opBlocks, Group: g, Level: level, From: from, Limit: limit})
	return res.Blocks, err
}

// Consistency proves group g's log at size from is a prefix of size to.
func (n *Node) Consistency(ctx context.Context, g int, from, to uint64, level Level) (ConsistencyProof, error) {
	res, err := n.query(ctx, Query{Op: opConsistency, Group: g, Level: level, From: from, To: to})
	if err != nil {
		return ConsistencyProof{}, err
	}
	return ConsistencyProof{From: from, To: to, RootFrom: res.RootFrom, RootTo: res.RootTo, Hashes: res.Proof}, nil
}

// LogNodes returns count hashes of perfect subtrees of group g's log at
// Merkle level level from index from (fsm.Store.Nodes): the hashes of a
// C2SP tile. A range past the log is ErrBadRequest; a read served by a
// node of a release from before this read (a rolling upgrade) is
// ErrUnsupported.
func (n *Node) LogNodes(ctx context.Context, g int, level uint8, from uint64, count int, lv Level) ([]chain.Hash, error) {
	res, err := n.query(ctx, Query{Op: opNodes, Group: g, Level: lv, NodeLevel: level, From: from, Limit: count})
	if err != nil {
		return nil, unsupportedOp(err, opNodes)
	}
	if len(res.Proof) != count {
		return nil, fmt.Errorf("%w: %d nodes asked, %d answered", ErrStore, count, len(res.Proof))
	}
	return res.Proof, nil
}

// Tx finds a transaction by ID in group g, or in every group when g < 0
// (the local group first, then the others in parallel).
func (n *Node) Tx(ctx context.Context, id chain.Hash, g int, level Level) (fsm.TxRecord, int, error) {
	if g >= 0 {
		res, err := n.query(ctx, Query{Op: opTx, Group: g, Level: level, ID: id})
		if err != nil {
			return fsm.TxRecord{}, g, err
		}
		return *res.Tx, g, nil
	}
	if rec, _, err := n.Tx(ctx, id, n.group, level); err == nil || !errors.Is(err, ErrNotFound) {
		return rec, n.group, err
	}
	type found struct {
		rec fsm.TxRecord
		g   int
		err error
	}
	ch := make(chan found, n.cfg.Groups)
	var wg sync.WaitGroup
	for other := 0; other < n.cfg.Groups; other++ {
		if other == n.group {
			continue
		}
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rec, _, err := n.Tx(ctx, id, g, level)
			ch <- found{rec, g, err}
		}(other)
	}
	go func() { wg.Wait(); close(ch) }()
	var firstErr error
	for f := range ch {
		if f.err == nil {
			return f.rec, f.g, nil
		}
		if !errors.Is(f.err, ErrNotFound) && firstErr == nil {
			firstErr = f.err
		}
	}
	if firstErr != nil {
		return fsm.TxRecord{}, -1, firstErr
	}
	return fsm.TxRecord{}, -1, fmt.Errorf("%w: transaction %s", ErrNotFound, id)
}

func (n *Node) query(ctx context.Context, q Query) (QueryResult, error) {
	if q.Group < 0 || q.Group >= n.cfg.Groups {
		return QueryResult{}, fmt.Errorf("%w: group %d, cluster has %d groups", ErrBadRequest, q.Group, n.cfg.Groups)
	}
	if _, err := ParseLevel(string(q.Level)); err != nil {
		return QueryResult{}, err
	}
	if q.Level == "" {
		q.Level = Default
	}
	if q.Group != n.group {
		return n.forwardQuery(ctx, q)
	}
	if a := n.chainAlarm(); a != nil {
		return n.queryDamaged(ctx, q, a)
	}
	if err := n.ensureLevel(q.Level); err != nil {
		lost := errors.Is(err, ErrUnknownOutcome) // leadership lost during the check
		if !errors.Is(err, ErrNotLeader) && !lost {
			return QueryResult{}, err
		}
		if q.Hops >= maxHops {
			return QueryResult{}, fmt.Errorf("%w: too many forwarding hops", ErrNotLeader)
		}
		q.Hops++
		return n.readFromLeader(ctx, q, lost)
	}
	return n.localQuery(q)
}

// readFromLeader serves a read on the group leader. A read that
// callLeader abandoned (the leader changed, or did not answer in time), or
// could not deliver (the leader is down: a read has no effect, so sending
// it again is safe), or one that this node began as leader and lost
// leadership during (lost), is sent again to the leader raft names next,
// as soon as it names one, for as long as ctx and noLeaderGrace allow;
// any other outcome is final. A leader that could not be reached is
// ErrNoLeader (503), not the transport's error (500).
func (n *Node) readFromLeader(ctx context.Context, q Query, lost bool) (QueryResult, error) {
	var since time.Time // when the read was first abandoned
	if lost {
		since = time.Now()
	}
	for {
		moved := n.leaders.next()
		var res QueryResult
		err := n.callLeader(ctx, mQuery, q, &res)
		switch {
		case err == nil:
			return res, nil
		case abandoned(err):
			if since.IsZero() {
				since = time.Now()
			}
		case errors.Is(err, ErrNoLeader):
			if since.IsZero() {
				return res, err
			}
		case isTransport(err):
			err = fmt.Errorf("%w: the leader did not answer: %v", ErrNoLeader, err)
			if since.IsZero() {
				since = time.Now()
			}
		default:
			return res, err
		}
		if time.Since(since) > n.noLeaderGrace() {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-n.stop:
			return res, ErrShutdown
		case <-moved:
		case <-time.After(n.cfg.HeartbeatTimeout / 4):
		}
	}
}

func (n *Node) ensureLevel(l Level) error {
	switch l {
	case Stale:
		return n.staleReady()
	case Linearizable:
		if !n.IsLeader() {
			return ErrNotLeader
		}
		if err := readLost(n.convert(n.raft.Barrier(n.cfg.ApplyTimeout).Error())); err != nil {
			return err
		}
	default:
		if !n.IsLeader() {
			return ErrNotLeader
		}
		since := time.Now()
		if err := readLost(n.convert(n.raft.VerifyLeader().Error())); err != nil {
			return err
		}
		// VerifyLeader may count answers to appends sent before the read
		// began (a paused leader's): confirmLeadership does not.
		if err := readLost(n.confirmLeadership(since)); err != nil {
			return err
		}
		// A new leader may not yet have applied what earlier leaders
		// committed and acknowledged: the first default read of a term
		// waits for a barrier, as linearizable reads always do.
		if err := readLost(n.caughtUp()); err != nil {
			return err
		}
	}
	if err := n.fsm.Err(); err != nil {
		// The barrier passed (raft handed every entry over), but a
		// stopped store lacks some: its read would be stale. Checked
		// after the barrier: a store that stops later lacks only later
		// entries.
		return fmt.Errorf("%w: %v", ErrStopped, err)
	}
	return nil
}

// readLost maps the failure of a leadership check a read made (a barrier
// or VerifyLeader, converted). A read changes nothing, so any failure but
// shutdown counts as leadership lost and the read goes to the next
// leader: raft steps down when its log store cannot take the barrier (a
// full disk), which must be a 503 at worst, never a 500.
func readLost(err error) error {
	if err == nil || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrUnknownOutcome) || errors.Is(err, ErrShutdown) {
		return err
	}
	return fmt.Errorf("%w: leadership check failed: %v", ErrUnknownOutcome, err)
}

// staleReady reports whether this replica may serve a stale read: not
// once its state machine has stopped on a storage failure. After a
// machine crash a chain store written without fsync (SyncFSM off) is
// rebuilt from the raft snapshot and log, and until it has re-applied
// the last command the raft log held at start, it holds less than it
// served before the stop: a stale read then would go backwards. If that
// command was never committed and is replaced by other entries, the next
// committed write lifts the gate.
func (n *Node) staleReady() error {
	if err := n.fsm.Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrStopped, err) // its chain no longer moves
	}
	floor := n.staleFloor.Load()
	if floor == 0 {
		return nil
	}
	applied, err := n.store.AppliedIndex()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStore, err)
	}
	if applied < floor {
		return fmt.Errorf("%w: applied index %d of %d", ErrCatchingUp, applied, floor)
	}
	n.staleFloor.CompareAndSwap(floor, 0)
	return nil
}

// lastCommand is the index of the newest command entry in a raft log (0
// if none of its newest entries is one).
func lastCommand(ls raft.LogStore) uint64 {
	first, err1 := ls.FirstIndex()
	last, err2 := ls.LastIndex()
	if err1 != nil || err2 != nil {
		return 0
	}
	for i := last; i >= first && i > 0 && last-i < 1<<16; i-- {
		var l raft.Log
		if ls.GetLog(i, &l) == nil && l.Type == raft.LogCommand {
			return i
		}
	}
	return 0
}

func (n *Node) forwardQuery(ctx context.Context, q Query) (QueryResult, error) {
	if q.Hops >= maxHops {
		return QueryResult{}, fmt.Errorf("%w: too many forwarding hops", ErrUnknownGroup)
	}
	q.Hops++
	nodes := n.dir.inGroup(q.Group)
	if len(nodes) == 0 {
		return QueryResult{}, fmt.Errorf("%w: group %d", ErrUnknownGroup, q.Group)
	}
	var last error
	for _, target := range nodes {
		var res QueryResult
		err := n.client.call(ctx, target.Addr, mQuery, q, &res)
		if err == nil || !isTransport(err) {
			return res, err
		}
		last = err
	}
	return QueryResult{}, groupUnreachable(ErrNoLeader, q.Group, last)
}

func (n *Node) localQuery(q Query) (QueryResult, error) {
	var res QueryResult
	switch q.Op {
	case opHead:
		h, ok, err := n.store.Head()
		if err != nil {
			return res, fmt.Errorf("%w: %v", ErrStore, err)
		}
		if ok {
			res.Header = h.Encode()
			if creds := n.cfg.TLS; creds != nil {
				at := time.Now().UnixNano()
				sig, err := creds.Sign(chain.HeadStatement(&h, at))
				if err != nil {
					return res, fmt.Errorf("%w: %v", ErrStore, err)
				}
				res.Signature, res.Signer, res.CertChain, res.SignedAt = sig, n.info.ID, creds.ChainDER(), at
			}
		}
	case opBlock:
		b, err := n.store.Block(q.Height)
		if err != nil {
			return res, storeErr(err)
		}
		res.Blocks = [][]byte{b}
	case opBlocks:
		if q.Limit < 1 || q.Limit > MaxBlocksPerRead {
			return res, fmt.Errorf("%w: limit must be 1..%d", ErrBadRequest, MaxBlocksPerRead)
		}
		bs, err := n.store.Blocks(q.From, q.Limit)
		if err != nil {
			return res, storeErr(err)
		}
		res.Blocks = bs
	case opTx:
		rec, err := n.store.Tx(q.ID)
		if err != nil {
			return res, storeErr(err)
		}
		res.Tx = &rec
	case opConsistency:
		rf, rt, proof, err := n.store.ConsistencyProof(q.From, q.To)
		if err != nil {
			return res, storeErr(err)
		}
		res.RootFrom, res.RootTo, res.Proof = rf, rt, proof
	case opNodes:
		hs, err := n.store.Nodes(q.NodeLevel, q.From, uint64(max(q.Limit, 0)))
		if err != nil {
			return res, storeErr(err)
		}
		res.Proof = hs
	case opItem:
		meta, segs, err := n.localItem(q)
		if err != nil {
			return res, err
		}
		res.Item, res.Segments = &meta, segs
	case opFunctions:
		fns, err := n.store.Functions()
		if err != nil {
			return res, storeErr(err)
		}
		res.Funcs = fns
	case opInvocation:
		// ID is the request ID, Filter the caller.
		prev, ok, err := n.recordedInvocation(InvokeRequest{RequestID: q.ID, Caller: q.Filter})
		if err != nil && !errors.Is(err, ErrNoAgreement) {
			return res, err
		}
		if !ok {
			return res, fmt.Errorf("%w: no execution record of request %x in group %d", ErrNotFound, q.ID[:6], n.group)
		}
		res.Invocation = &prev
	case opItems:
		items, err := n.store.Items(q.Filter, max(1, min(q.Limit, MaxItemsPerRead)))
		if err != nil {
			return res, storeErr(err)
		}
		res.Items = items
	default:
		return res, fmt.Errorf("%w: query op %q", ErrBadRequest, q.Op)
	}
	return res, nil
}

// unsupportedOp turns a node's refusal of query op as unknown into
// ErrUnsupported: every release answers an op it does not know with
// ErrBadRequest and the message `query op "<op>"` (localQuery), so a node
// of an older release, reached during a rolling upgrade, is told from a
// bad request. Other errors pass unchanged.
func unsupportedOp(err error, op string) error {
	if errors.Is(err, ErrBadRequest) && strings.Contains(err.Error(), fmt.Sprintf("query op %q", op)) {
		return fmt.Errorf("%w: it does not know %q reads (%v); they work once every node of the group is upgraded", ErrUnsupported, op, err)
	}
	return err
}

// MaxItemsPerRead caps one Items read.
const MaxItemsPerRead = 1000

// MaxItemPageSegments caps the segments of one ItemPage read, so that a
// page always fits in one internal RPC frame with room to spare: a
// segment holds at most shard.MaxSegmentBytes (768 KiB), about 1 MiB in
// the frame's JSON (base64) with its proof, so a page's frame is about
// 17 MiB at most, well under the 96 MiB frame limit.
const MaxItemPageSegments = 16

// Item returns group g's share of a shared data item: its metadata and the
// transactions holding all the share's segments, with inclusion proofs.
// It reads the share page by page (ItemPage), so it works for shares of
// any size, but then holds them whole; the proofs of each page are for
// one head of g, those of different pages for different heads if g
// committed a block in between.
func (n *Node) Item(ctx context.Context, g int, dataID string, level Level) (fsm.ItemMeta, []fsm.TxRecord, error) {
	var all []fsm.TxRecord
	for {
		meta, segs, err := n.ItemPage(ctx, g, dataID, len(all), MaxItemPageSegments, level)
		if err != nil {
			return meta, nil, err
		}
		all = append(all, segs...)
		if len(all) >= meta.Segments {
			return meta, all, nil
		}
	}
}

// ItemPage returns group g's share of a shared data item as Item does, but
// only segments from..from+limit-1, fewer if the share ends sooner, all
// with inclusion proofs for the same head of g: the one current when the
// page was read. limit must be 1..MaxItemPageSegments and from a segment
// of the share (0..Segments-1), else it fails with ErrBadRequest; an
// unknown item or a missing segment is ErrNotFound.
func (n *Node) ItemPage(ctx context.Context, g int, dataID string, from, limit int, level Level) (fsm.ItemMeta, []fsm.TxRecord, error) {
	if from < 0 || limit < 1 || limit > MaxItemPageSegments {
		return fsm.ItemMeta{}, nil, fmt.Errorf("%w: segments from %d, limit %d (want from >= 0, limit 1..%d)", ErrBadRequest, from, limit, MaxItemPageSegments)
	}
	res, err := n.query(ctx, Query{Op: opItem, Group: g, Level: level, DataID: dataID, From: uint64(from), Limit: limit})
	if err != nil {
		return fsm.ItemMeta{}, nil, err
	}
	if res.Item == nil {
		return fsm.ItemMeta{}, nil, fmt.Errorf("%w: data item %q in group %d", ErrNotFound, dataID, g)
	}
	if len(res.Segments) == 0 || len(res.Segments) > limit {
		return fsm.ItemMeta{}, nil, fmt.Errorf("%w: a page of %d segments of data item %q from group %d, asked for 1..%d", ErrStore, len(res.Segments), dataID, g, limit)
	}
	return *res.Item, res.Segments, nil
}

// localItem reads an opItem query from the store: segments From..From+
// Limit-1 of the share, or with Limit 0 (a node that does not page) all.
func (n *Node) localItem(q Query) (fsm.ItemMeta, []fsm.TxRecord, error) {
	var (
		meta fsm.ItemMeta
		segs []fsm.TxRecord
		err  error
	)
	switch {
	case q.Limit == 0:
		meta, segs, err = n.store.Item(q.DataID)
	case q.Limit < 0 || q.Limit > MaxItemPageSegments:
		return meta, nil, fmt.Errorf("%w: limit must be 1..%d segments", ErrBadRequest, MaxItemPageSegments)
	default:
		meta, segs, err = n.store.ItemSegments(q.DataID, int(min(q.From, shard.MaxSegments)), q.Limit)
	}
	if err != nil {
		return meta, nil, storeErr(err)
	}
	return meta, segs, nil
}

// Items lists group g's data items whose description contains filter.
func (n *Node) Items(ctx context.Context, g int, filter string, level Level) ([]fsm.ItemMeta, error) {
	res, err := n.query(ctx, Query{Op: opItems, Group: g, Level: level, Filter: filter, Limit: MaxItemsPerRead})
	return res.Items, err
}

func storeErr(err error) error {
	switch {
	case errors.Is(err, fsm.ErrNotFound):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case errors.Is(err, fsm.ErrBadRange):
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	case errors.Is(err, fsm.ErrClosed):
		return ErrShutdown
	}
	return fmt.Errorf("%w: %v", ErrStore, err)
}

func unmarshal(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return nil
}
