// Package share is the tree of fair shares: targets set by operators, the
// usage each share has had, and the order in which shares are offered work.
//
// A share's target is a percentage of its parent. Siblings' explicit
// targets sum to at most 100; siblings without one split what is left
// equally (nothing, if the explicit ones take it all). Usage is core-seconds:
// those of ended jobs decay exponentially with the tree's window as time
// constant, so the past weighs less the older it is (Slurm's half-life
// decay, PanDA's sliding window), and a running job counts by its elapsed
// time. A share's achieved fraction is its usage over its siblings' total.
//
// Ordering asks a different question: who goes next, right now, when many
// slots are handed out in the same instant. There a running job counts by
// its share's expected job length (an average of its jobs' durations), so
// each assignment moves its share back at once and a burst of free slots is
// spread by target instead of going to whichever share was behind.
package share

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Default is the share of tasks that name none.
const Default = "default"

// ErrInvalid marks a bad path or target; the message says what is wrong.
var ErrInvalid = errors.New("invalid share")

const (
	maxDepth   = 8
	maxSegment = 64
	// firstGuess is the expected job length before any job has ended.
	firstGuess = 60.0
	// ewmaWeight is how much one ended job moves its share's expectation.
	ewmaWeight = 0.2
	// epsilon absorbs float rounding in sums of targets.
	epsilon = 1e-9
)

var segmentRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// CheckPath reports whether path names a share: segments of letters,
// digits, '.', '_' and '-' separated by '/'.
func CheckPath(path string) error {
	if path == "" {
		return fmt.Errorf("%w: empty path", ErrInvalid)
	}
	segs := strings.Split(path, "/")
	if len(segs) > maxDepth {
		return fmt.Errorf("%w: %q is deeper than %d levels", ErrInvalid, path, maxDepth)
	}
	for _, s := range segs {
		if len(s) > maxSegment || !segmentRe.MatchString(s) {
			return fmt.Errorf("%w: %q: each part must be 1-%d letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid, path, maxSegment)
		}
	}
	return nil
}

// Tree holds every share. It is not safe for concurrent use: the broker
// calls it under its lock.
type Tree struct {
	root   *Node
	byPath map[string]*Node
	tau    float64 // decay time constant, seconds
	guess  float64 // expected job length over all shares

	scratch []keyed
}

// Node is one share.
type Node struct {
	Path     string
	parent   *Node
	children []*Node
	target   float64 // percent of parent; meaningful when explicit
	explicit bool

	// Usage of the subtree.
	done     float64 // decayed core-seconds of ended jobs, as of doneAt
	doneAt   float64 // seconds
	runCores float64 // cores of running jobs
	runStart float64 // sum of cores × start time (seconds) of running jobs
	charge   float64 // sum of cores × expected length of running jobs
	expect   float64 // expected job length (leaf's own jobs), 0: unknown

	// Ready counts indexed tasks in the subtree; its owner (the broker)
	// keeps it, so that ordering can skip subtrees with no work.
	Ready int
}

// New returns a tree whose usage decays with time constant window.
func New(window time.Duration) *Tree {
	if window <= 0 {
		window = 10 * time.Minute
	}
	root := &Node{}
	return &Tree{root: root, byPath: map[string]*Node{"": root}, tau: window.Seconds(), guess: firstGuess}
}

// Root is the tree's top; its children are the top-level shares.
func (t *Tree) Root() *Node { return t.root }

// Children returns n's children in path order. The slice is the tree's own.
func (n *Node) Children() []*Node { return n.children }

// Leaf returns the share at path, creating it (and its parents) without a
// target if needed. The path must pass CheckPath.
func (t *Tree) Leaf(path string) *Node {
	if n, ok := t.byPath[path]; ok {
		return n
	}
	parent := t.root
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		parent = t.Leaf(path[:i])
	}
	n := &Node{Path: path, parent: parent}
	i, _ := slices.BinarySearchFunc(parent.children, path, func(c *Node, p string) int { return strings.Compare(c.Path, p) })
	parent.children = slices.Insert(parent.children, i, n)
	t.byPath[path] = n
	return n
}

// Lookup returns the share at path, if it exists.
func (t *Tree) Lookup(path string) (*Node, bool) {
	n, ok := t.byPath[path]
	return n, ok && n != t.root
}

// Set gives the share at path a target in percent of its parent, creating
// it if needed. The explicit targets of its siblings and it must not sum
// over 100.
func (t *Tree) Set(path string, target float64) error {
	if err := CheckPath(path); err != nil {
		return err
	}
	if math.IsNaN(target) || target <= 0 || target > 100 {
		return fmt.Errorf("%w: %s: target %v must be above 0 and at most 100 percent", ErrInvalid, path, target)
	}
	sum, parent := target, t.root
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		if p, ok := t.byPath[path[:i]]; ok {
			parent = p
		} else {
			parent = nil // a new subtree: no siblings yet
		}
	}
	if parent != nil {
		for _, c := range parent.children {
			if c.explicit && c.Path != path {
				sum += c.target
			}
		}
	}
	if sum > 100+epsilon {
		return fmt.Errorf("%w: %s: targets under %s would sum to %.4g%% (over 100%%)", ErrInvalid, path, parentName(path), sum)
	}
	n := t.Leaf(path)
	n.target, n.explicit = target, true
	return nil
}

// Unset removes path's explicit target; it then splits what its siblings
// leave with the other shares that have none.
func (t *Tree) Unset(path string) error {
	n, ok := t.Lookup(path)
	if !ok {
		return fmt.Errorf("%w: no share %s", ErrInvalid, path)
	}
	n.target, n.explicit = 0, false
	return nil
}

func parentName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		return path[:i]
	}
	return "the top level"
}

// Target returns n's effective target in percent of its parent.
func (n *Node) Target() float64 {
	if n.explicit {
		return n.target
	}
	if n.parent == nil {
		return 100
	}
	left, unset := 100.0, 0
	for _, c := range n.parent.children {
		if c.explicit {
			left -= c.target
		} else {
			unset++
		}
	}
	return max(left, 0) / float64(unset)
}

// Explicit reports whether an operator set n's target.
func (n *Node) Explicit() bool { return n.explicit }
