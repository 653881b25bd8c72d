package cluster

import "io"

// WriteSnapshot writes a consistent copy of this node's chain store to w:
// the bytes a raft snapshot of the group carries (a bbolt file, read in
// one read transaction while writes go on), verified in full before its
// last chunk is written (fsm.FSM.WriteSnapshot). A store found damaged,
// now or earlier, is refused; w is then left short of a whole copy.
// The copy is as fresh as this replica: ask the group's leader for one
// holding every committed write.
func (n *Node) WriteSnapshot(w io.Writer) error {
	return n.fsm.WriteSnapshot(w)
}
