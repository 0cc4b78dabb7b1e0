//go:build unix

package vault

import (
	"errors"
	"os"
	"syscall"

	"github.com/custos/custos"
)

// lockFile takes an exclusive, non-blocking lock on path (created 0600 if
// missing), so that two rotations never run at once. The lock goes with
// the process, so a crashed rotation leaves nothing to clean up.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, custos.Errorf(custos.ECONFLICT, "another key rotation holds %s", path)
		}
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
