//go:build !unix

package pki

// lockDir does not lock on platforms without flock: there, two processes must
// not issue certificates into one dev CA directory at the same time.
func lockDir(dir string) (unlock func(), err error) {
	return func() {}, nil
}
