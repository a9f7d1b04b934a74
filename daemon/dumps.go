package daemon

import (
	"sync"

	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/prefixset"
)

// dumpShare hands out copies of a list for show ... -v. A copy of a big
// list is large (a million entries, tens of megabytes) and a reader that
// reads slowly keeps its copy for as long as it likes, so copies are
// shared: one per version of the lists, read by everyone who asks while
// it is current. Once maxSharedDumps copies are being read, a user who
// may not change state gets the newest copy there is, however old,
// instead of a new one: a crowd of slow readers costs at most that many
// copies. Root and spfd's user always see the current version, so a
// change they made shows at once.
type dumpShare struct {
	mu     sync.Mutex
	newest [2]*sharedDump // by list
	live   int            // copies with readers
}

// maxSharedDumps bounds the copies unprivileged readers keep alive.
const maxSharedDumps = 4

type sharedDump struct {
	dump    *state.Dump
	ignore  *prefixset.Set
	readers int
}

// acquire returns a copy of list at version (or, for an unprivileged
// reader past the bound, the newest copy), made by take when none fits,
// and the function to call when done reading it.
func (s *dumpShare) acquire(list state.List, version uint64, privileged bool, take func() (*state.Dump, *prefixset.Set)) (*sharedDump, func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sd := s.newest[list]
	if sd == nil || sd.dump.Version() < version && (privileged || s.live < maxSharedDumps) {
		dump, ignore := take()
		sd = &sharedDump{dump: dump, ignore: ignore}
		s.newest[list] = sd
	}
	if sd.readers == 0 {
		s.live++
	}
	sd.readers++
	var once sync.Once
	return sd, func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			sd.readers--
			if sd.readers == 0 {
				s.live--
			}
		})
	}
}
