//go:build !unix

package audit

import "os"

// lockFile is a no-op where flock(2) is not available.
func lockFile(*os.File) error { return nil }

// ownedByOther cannot tell on this platform.
func ownedByOther(os.FileInfo) bool { return false }
