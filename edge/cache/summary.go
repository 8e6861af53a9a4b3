package cache

import (
	"encoding/binary"
	"fmt"

	"github.com/bits-and-blooms/bloom/v3"
)

// A summary is a Bloom filter of a cache's object IDs: a few bits per
// object, about 1% false positives, no false negatives. Pilots send it to
// the dispatcher, which prefers to give a pilot the jobs whose inputs it
// holds; a false positive only costs a download that would happen anyway.
const (
	summaryFalsePositives = 0.01
	maxSummaryBytes       = 256 << 10 // ~200,000 objects
	maxSummaryHashes      = 16
)

// Summarize encodes ids as a Bloom filter: its bits (a multiple of 64,
// little-endian words) and its number of hash functions.
func Summarize(ids []string) (bits []byte, hashes int) {
	m, k := bloom.EstimateParameters(uint(max(len(ids), 64)), summaryFalsePositives)
	m = (m + 63) / 64 * 64
	if m/8 > maxSummaryBytes {
		m = maxSummaryBytes * 8 // more objects than that: more false positives, same size
	}
	f := bloom.New(m, k)
	for _, id := range ids {
		f.AddString(id)
	}
	words := f.BitSet().Words()
	bits = make([]byte, 8*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint64(bits[8*i:], w)
	}
	return bits, int(k)
}

// Summary answers whether a cache may hold an object.
type Summary struct{ f *bloom.BloomFilter }

// ParseSummary decodes what Summarize made, refusing sizes no pilot sends.
func ParseSummary(bits []byte, hashes int) (*Summary, error) {
	if len(bits) == 0 || len(bits)%8 != 0 || len(bits) > maxSummaryBytes {
		return nil, fmt.Errorf("cache summary of %d bytes: want a multiple of 8 up to %d", len(bits), maxSummaryBytes)
	}
	if hashes < 1 || hashes > maxSummaryHashes {
		return nil, fmt.Errorf("cache summary with %d hash functions: want 1 to %d", hashes, maxSummaryHashes)
	}
	words := make([]uint64, len(bits)/8)
	for i := range words {
		words[i] = binary.LittleEndian.Uint64(bits[8*i:])
	}
	return &Summary{bloom.FromWithM(words, uint(len(bits)*8), uint(hashes))}, nil
}

// Holds reports whether the cache may hold the object with this ID.
func (s *Summary) Holds(id string) bool { return s.f.TestString(id) }
