package engine

// Session is a backup session of a storage group (see the backup API).
type Session struct {
	g *Group
}

func (s *Session) abortLocked(err error) {}
