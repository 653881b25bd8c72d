package sharing

// RecomputeHash returns the hash a well-formed share should carry, so
// tests can play an attacker who re-hashes a share after changing it.
func RecomputeHash(s *Share) [32]byte {
	if err := s.validate(); err != nil {
		panic(err)
	}
	_, h := s.hashes()
	return h
}
