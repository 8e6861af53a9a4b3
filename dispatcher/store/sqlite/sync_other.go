//go:build !linux

package sqlite

import "os"

// flushFile makes f's data durable.
func flushFile(f *os.File) error { return f.Sync() }
