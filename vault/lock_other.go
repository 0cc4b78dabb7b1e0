//go:build !unix

package vault

// lockFile does nothing where flock is missing: run one rotation at a time.
func lockFile(path string) (unlock func(), err error) { return func() {}, nil }
