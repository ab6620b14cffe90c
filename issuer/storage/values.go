package storage

import "time"

// UnixMicro is a time as every backend keeps it: Unix microseconds, with
// the zero time as 0. What a backend returns is FromUnixMicro of it, so
// finer precision and time zones are not kept.
func UnixMicro(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// FromUnixMicro is the time UnixMicro gave n for, in UTC; 0 is the zero
// time.
func FromUnixMicro(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

// FlushLimit is the batch size of a FlushExpired call whose limit is not
// positive.
func FlushLimit(limit int) int {
	if limit <= 0 {
		return 1000
	}
	return limit
}
