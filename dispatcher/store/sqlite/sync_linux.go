package sqlite

import (
	"os"

	"golang.org/x/sys/unix"
)

// flushFile makes f's data durable. fdatasync skips the inode's timestamps,
// which every write of the log changes, so a flush of frames written over
// old ones (the log is reused after each checkpoint) need not wait for a
// filesystem journal commit; a log that grew has its new size flushed too.
func flushFile(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if err != unix.EINTR {
			return err
		}
	}
}
