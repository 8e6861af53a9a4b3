package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// sysfs reads the Linux device trees below root: "/" on a node, a tree kept
// in testdata in tests. Every device is found by walking
// root/sys/bus/pci/devices: the directories /sys/class/drm/cardN/device and
// /sys/class/accel/accelN/device link to are the same PCI function
// directories, and walking them needs no symlink resolved.
//
// A missing directory means the node has no such device, not an error. A
// file that cannot be parsed skips its device with a warning: a probe never
// fails on what one device reports.
type sysfs struct {
	root string
	log  *slog.Logger
}

// pciDev is one PCI function.
type pciDev struct {
	addr   string // domain:bus:device.function, e.g. 0000:c1:00.0
	dir    string
	driver string // bound driver, "" for none
	vendor uint32
	device uint32
	class  uint32 // base class, subclass, programming interface: 0x038000
}

// slot is the card's address without the function: a card's functions
// (an FPGA's management and user functions, say) share it.
func (d pciDev) slot() string {
	if i := strings.LastIndexByte(d.addr, '.'); i >= 0 {
		return d.addr[:i]
	}
	return d.addr
}

func (s sysfs) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

// pciDevices lists the node's PCI functions ordered by address, which keeps
// the order of what is built from them stable from one probe to the next.
func (s sysfs) pciDevices() []pciDev {
	dir := s.path("sys", "bus", "pci", "devices")
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("probe: cannot list PCI devices", "dir", dir, "err", err)
		}
		return nil
	}
	var devs []pciDev
	for _, e := range entries {
		d, err := readPCIDev(filepath.Join(dir, e.Name()))
		if err != nil {
			s.log.Warn("probe: skipping PCI device", "addr", e.Name(), "err", err)
			continue
		}
		devs = append(devs, d)
	}
	slices.SortFunc(devs, func(a, b pciDev) int { return strings.Compare(a.addr, b.addr) })
	return devs
}

// readPCIDev reads the function in dir. Its address is the directory's name,
// and the PCI_SLOT_NAME of its uevent where there is one: the kernel writes
// both alike, and test trees, which cannot have ':' in file names (Go module
// zips refuse them), name their directories otherwise.
func readPCIDev(dir string) (pciDev, error) {
	d := pciDev{addr: filepath.Base(dir), dir: dir}
	if b, err := os.ReadFile(filepath.Join(dir, "uevent")); err == nil {
		for line := range strings.Lines(string(b)) {
			k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
			switch k {
			case "DRIVER":
				d.driver = v
			case "PCI_SLOT_NAME":
				d.addr = v
			}
		}
	}
	var err error
	if d.vendor, err = readHex(filepath.Join(dir, "vendor")); err != nil {
		return d, err
	}
	if d.device, err = readHex(filepath.Join(dir, "device")); err != nil {
		return d, err
	}
	if d.class, err = readHex(filepath.Join(dir, "class")); err != nil {
		return d, err
	}
	return d, nil
}

// readString returns the file's content without surrounding space.
func readString(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readOptional is readString for a file the driver may not provide: a
// missing file reads as "".
func readOptional(path string) (string, error) {
	s, err := readString(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return s, err
}

// readHex reads a sysfs ID file such as vendor ("0x1002").
func readHex(path string) (uint32, error) {
	s, err := readString(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return uint32(v), nil
}

// readUint reads a decimal count such as mem_info_vram_total.
func readUint(path string) (int64, error) {
	s, err := readString(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return int64(v), nil
}

// children lists the entries of dir whose names are prefix and a number,
// e.g. renderD128 under drm, sorted by that number.
func children(dir, prefix string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if _, ok := nameNumber(e.Name(), prefix); ok {
			names = append(names, e.Name())
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		x, _ := nameNumber(a, prefix)
		y, _ := nameNumber(b, prefix)
		return x - y
	})
	return names
}

// nameNumber returns N for a name prefixN.
func nameNumber(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok || rest == "" {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n >= 0
}

// hasNode reports whether the device node root/dev/rel exists: sysfs shows
// the host's devices, /dev those this pilot can open.
func (s sysfs) hasNode(rel ...string) bool {
	_, err := os.Stat(s.path(append([]string{"dev"}, rel...)...))
	return err == nil
}

// readOptionalUint is readUint for a file the driver may not provide: a
// missing or empty file reads as 0.
func readOptionalUint(path string) (int64, error) {
	s, err := readOptional(path)
	if err != nil || s == "" {
		return 0, err
	}
	v, err := strconv.ParseUint(s, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return int64(v), nil
}
