package sqlite

import (
	"database/sql"
	"time"
)

// unixNano stores the zero time as 0, so that it reads back as the zero
// time and not as 1970-01-01.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromUnixNano returns times in UTC, so that what is read does not depend
// on the host's time zone.
func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// nullInt keeps "no exit code" apart from exit code 0.
func nullInt(p *int) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

func intPtr(n sql.NullInt64) *int {
	if !n.Valid {
		return nil
	}
	v := int(n.Int64)
	return &v
}
