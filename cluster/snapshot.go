package cluster

import "io"

// WriteSnapshot writes a consistent copy of this node's chain store to w:
// the bytes a raft snapshot of the group carries (a bbolt file, read in
// one read transaction while writes go on), after the same check of its
// newest blocks a raft snapshot gets. A store found damaged is refused.
// The copy is as fresh as this replica: ask the group's leader for one
// holding every committed write.
func (n *Node) WriteSnapshot(w io.Writer) error {
	s, err := n.fsm.FullSnapshot()
	if err != nil {
		return err
	}
	defer s.Release()
	return s.Persist(&writerSink{Writer: w})
}

// writerSink is a raft.SnapshotSink over a plain writer.
type writerSink struct{ io.Writer }

func (writerSink) ID() string    { return "stream" }
func (writerSink) Cancel() error { return nil }
func (writerSink) Close() error  { return nil }
