package pilot

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pando-wms/pando/containers"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// PayloadSpec is how a pilot runs job attempt a in work directory dir with
// the GPUs gpus (see NameGPUs): its command, image, environment, limits and
// isolation. `pando payload run` uses it too, so that a payload developer's
// local run is the pilot's run. Stdout and Stderr are the caller's to set.
func PayloadSpec(name string, a *wire.Assign, dir string, gpus []containers.GPU) containers.Spec {
	return containers.Spec{
		Name:    name,
		Image:   a.Image,
		Command: a.Command,
		Env:     payloadEnv(a, dir, gpus),
		WorkDir: dir,
		Network: a.Network,
		GPUs:    gpus,
		Limits:  containers.Limits{Cores: a.Resources.Cores, MemoryBytes: a.Resources.MemoryBytes, PIDs: DefaultPIDs},
	}
}

// DefaultPIDs bounds the processes of one payload, so that a fork bomb
// takes down its job and not the node (enforced by container runtimes).
const DefaultPIDs = 16384

// payloadEnv is the task's environment plus the PANDO_* variables. The
// vendors' own variables (CUDA_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES, ...)
// are the runtime's to set: a container is given its GPUs otherwise.
func payloadEnv(a *wire.Assign, dir string, gpus []containers.GPU) map[string]string {
	env := make(map[string]string, len(a.Env)+8)
	for k, v := range a.Env {
		env[k] = v
	}
	env["PANDO_TASK_ID"] = strconv.FormatInt(a.TaskID, 10)
	env["PANDO_JOB_ID"] = strconv.FormatInt(a.JobID, 10)
	env["PANDO_JOB_INDEX"] = strconv.Itoa(a.Index)
	env["PANDO_ATTEMPT"] = strconv.Itoa(a.Attempt)
	env["PANDO_WORKDIR"] = dir
	env["PANDO_CORES"] = strconv.Itoa(a.Resources.Cores)
	ids := make([]string, len(gpus))
	for i, g := range gpus {
		ids[i] = g.ID
	}
	env["PANDO_GPUS"] = strings.Join(ids, ",")
	env["PANDO_GPU_VENDOR"] = ""
	if len(gpus) > 0 {
		env["PANDO_GPU_VENDOR"] = gpus[0].Vendor
	}
	return env
}

// PickGPUs chooses r.GPUs of gpus, none of them held (held may be nil), that
// fit r: its GPU model and memory, and its accelerator where that names a GPU
// vendor. They are all of one vendor, since a payload uses one vendor's
// runtime: the vendor with the fewest fitting GPUs free that still has
// enough, so that a larger job later still finds room; within it the lowest
// indexes. PickGPUs returns nil when no vendor has enough.
func PickGPUs(gpus []wire.GPU, held []bool, r wire.JobResources) []int {
	if r.GPUs <= 0 {
		return nil
	}
	var model *regexp.Regexp
	if r.GPUModel != "" {
		var err error
		if model, err = regexp.Compile(r.GPUModel); err != nil {
			return nil // as the dispatcher does: a model that does not compile matches no GPU
		}
	}
	byVendor := isGPUVendor(gpus, r.Accelerator)
	free := map[string][]int{} // fitting free GPUs by vendor, in index order
	var order []string         // vendors by their first fitting GPU
	for i, g := range gpus {
		v := gpuVendor(g)
		switch {
		case i < len(held) && held[i]:
		case r.GPUMemory > 0 && g.MemoryBytes < r.GPUMemory:
		case r.GPUCompute > 0 && (v != "nvidia" || g.ComputeMajor*100+g.ComputeMinor < r.GPUCompute): // CUDA's notion
		case model != nil && !model.MatchString(g.Model):
		case byVendor && v != r.Accelerator:
		default:
			if free[v] == nil {
				order = append(order, v)
			}
			free[v] = append(free[v], i)
		}
	}
	var best []int
	for _, v := range order {
		if n := len(free[v]); n >= r.GPUs && (best == nil || n < len(best)) {
			best = free[v]
		}
	}
	if best == nil {
		return nil
	}
	return best[:r.GPUs]
}

// isGPUVendor reports whether accel names the vendor of some of gpus, which
// the dispatcher takes as asking for that vendor's GPUs.
func isGPUVendor(gpus []wire.GPU, accel string) bool {
	if accel == "" {
		return false
	}
	for _, g := range gpus {
		if gpuVendor(g) == accel {
			return true
		}
	}
	return false
}

// gpuVendor is g's vendor; a probe from before vendors were reported found NVIDIA's only.
func gpuVendor(g wire.GPU) string {
	if g.Vendor == "" {
		return "nvidia"
	}
	return g.Vendor
}

// NameGPUs describes gpus[i], for each i in given, as the runtimes need it
// (see containers.GPU). What the probe does not report is read from the
// sysfs and dev trees under root ("/" on a node): each AMD and Intel GPU's
// device nodes, ROCm's order of AMD GPUs without a unique_id, Intel's order
// and tiles. A GPU not found there keeps an ID by its rank among its
// vendor's GPUs, and no device nodes, so that no container can be given it;
// the error names it.
//
// A wire.GPU that carried its PCI address would make the search exact: AMD
// GPUs without a unique_id and Intel GPUs are matched to sysfs devices by
// their order, which is the probe's (PCI address order).
func NameGPUs(root string, gpus []wire.GPU, given []int) ([]containers.GPU, error) {
	if len(given) == 0 {
		return nil, nil
	}
	named, lost := nameGPUs(root, gpus)
	out := make([]containers.GPU, len(given))
	var errs []error
	for k, i := range given {
		out[k] = named[i]
		if lost[i] {
			errs = append(errs, fmt.Errorf("%s GPU %d (%s) not found in %s", named[i].Vendor, gpus[i].Index, named[i].ID, filepath.Join(root, "sys")))
		}
	}
	return out, errors.Join(errs...)
}

// nameGPUs names every GPU of the node; lost marks the AMD and Intel GPUs
// not found in sysfs.
func nameGPUs(root string, gpus []wire.GPU) (named []containers.GPU, lost []bool) {
	named, lost = make([]containers.GPU, len(gpus)), make([]bool, len(gpus))
	rank := map[string]int{}
	var amd, intel []int
	for i, g := range gpus {
		v := gpuVendor(g)
		named[i] = containers.GPU{Vendor: v, ID: strconv.Itoa(rank[v])}
		rank[v]++
		switch v {
		case "nvidia":
			named[i].ID = cmp.Or(g.UUID, strconv.Itoa(g.Index))
		case "amd":
			amd, lost[i] = append(amd, i), true
			if hasUniqueID(g) {
				named[i].ID = "GPU-" + g.UUID
			}
		case "intel":
			intel, lost[i] = append(intel, i), true
		}
	}
	if len(amd)+len(intel) == 0 {
		return named, lost
	}
	devs := drmGPUs(root)
	nameAMD(root, gpus, amd, devs, named, lost)
	nameIntel(intel, devs, named, lost)
	return named, lost
}

// hasUniqueID: ROCm names a GPU by a unique_id that is not zero.
func hasUniqueID(g wire.GPU) bool {
	return strings.Trim(g.UUID, "0") != ""
}

// nameAMD finds the AMD GPUs idx of gpus in devs: by unique_id, and the others
// in order. ROCm takes a unique_id as "GPU-<unique_id>"; a GPU without one
// goes by its index among the GPU nodes of the KFD topology, ROCm's order.
func nameAMD(root string, gpus []wire.GPU, idx []int, devs []drmGPU, named []containers.GPU, lost []bool) {
	var cands []drmGPU
	for _, d := range devs {
		if d.vendor == "amd" {
			cands = append(cands, d)
		}
	}
	match := map[int]drmGPU{}
	var rest []int
	for _, i := range idx {
		k := slices.IndexFunc(cands, func(d drmGPU) bool { return hasUniqueID(gpus[i]) && strings.EqualFold(d.uniqueID, gpus[i].UUID) })
		if k < 0 {
			rest = append(rest, i)
			continue
		}
		match[i] = cands[k]
		cands = slices.Delete(cands, k, k+1)
	}
	if len(rest) == len(cands) {
		for k, i := range rest {
			match[i] = cands[k]
		}
	}
	kfd := kfdOrder(root)
	for i, d := range match {
		lost[i] = false
		named[i].Devices = append([]string{"/dev/kfd"}, d.nodes()...)
		if r, ok := kfd[d.renderMinor()]; ok && !hasUniqueID(gpus[i]) {
			named[i].ID = strconv.Itoa(r)
		}
	}
}

// nameIntel finds the Intel GPUs idx in devs, in order. Level Zero numbers
// discrete cards by PCI address and then integrated ones (the probe offers
// none), tiles as devices under the default FLAT hierarchy.
func nameIntel(idx []int, devs []drmGPU, named []containers.GPU, lost []bool) {
	var cards []drmGPU
	for _, d := range devs {
		if d.vendor == "intel" && !d.integrated {
			cards = append(cards, d)
		}
	}
	if len(cards) != len(idx) {
		return
	}
	tile := 0
	for k, i := range idx {
		d := cards[k]
		lost[i] = false
		named[i].ID = strconv.Itoa(k)
		named[i].Devices = d.nodes()
		named[i].FlatIDs = nil
		for range d.tiles {
			named[i].FlatIDs = append(named[i].FlatIDs, strconv.Itoa(tile))
			tile++
		}
	}
}

// drmGPU is a GPU the probe may have offered from sysfs: driven by amdgpu,
// i915 or xe, with a render node in root/dev.
type drmGPU struct {
	addr       string
	vendor     string   // "amd" or "intel"
	render     []string // renderD128, ...
	cards      []string // card0, ...
	uniqueID   string   // AMD
	tiles      int      // Intel: tiles (Level Zero sub-devices), at least 1
	integrated bool     // Intel: the integrated GPU at 0000:00:02.0, without local memory
}

// nodes are d's device nodes on the host.
func (d drmGPU) nodes() []string {
	var out []string
	for _, n := range slices.Concat(d.render, d.cards) {
		out = append(out, "/dev/dri/"+n)
	}
	return out
}

func (d drmGPU) renderMinor() int {
	n, _ := strconv.Atoi(strings.TrimPrefix(d.render[0], "renderD"))
	return n
}

// drmGPUs lists the candidates in root's sysfs by PCI address. Directories
// that cannot be read are skipped: the GPUs on them stay unnamed.
func drmGPUs(root string) []drmGPU {
	dir := filepath.Join(root, "sys", "bus", "pci", "devices")
	entries, _ := os.ReadDir(dir)
	var out []drmGPU
	for _, e := range entries {
		if d, ok := readDRMGPU(root, filepath.Join(dir, e.Name())); ok {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b drmGPU) int { return strings.Compare(a.addr, b.addr) })
	return out
}

func readDRMGPU(root, dir string) (drmGPU, bool) {
	d := drmGPU{addr: filepath.Base(dir)}
	uevent, _ := os.ReadFile(filepath.Join(dir, "uevent"))
	var driver string
	for line := range strings.Lines(string(uevent)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "DRIVER":
			driver = v
		case "PCI_SLOT_NAME":
			d.addr = v
		}
	}
	vendor, class := sysHex(filepath.Join(dir, "vendor")), sysHex(filepath.Join(dir, "class"))
	switch {
	case vendor == 0x1002 && driver == "amdgpu":
		d.vendor = "amd"
		d.uniqueID = sysString(filepath.Join(dir, "unique_id"))
	case vendor == 0x8086 && (driver == "i915" || driver == "xe") && class>>16 == 0x03:
		d.vendor = "intel"
	default:
		return d, false
	}
	drm := filepath.Join(dir, "drm")
	d.render, d.cards = numbered(drm, "renderD"), numbered(drm, "card")
	if len(d.render) == 0 {
		return d, false
	}
	if _, err := os.Stat(filepath.Join(root, "dev", "dri", d.render[0])); err != nil {
		return d, false // as the probe: a GPU the pilot cannot open is not offered
	}
	if d.vendor == "intel" {
		tiles := numbered(dir, "tile") // xe
		if len(tiles) == 0 && len(d.cards) > 0 {
			tiles = numbered(filepath.Join(drm, d.cards[0], "gt"), "gt") // i915
		}
		d.tiles = max(len(tiles), 1)
		d.integrated = d.addr == "0000:00:02.0" && !intelLocalMemory(dir, d.cards)
	}
	return d, true
}

// intelLocalMemory: xe reports each tile's VRAM, Intel's out-of-tree i915 the card's.
func intelLocalMemory(dir string, cards []string) bool {
	for _, t := range numbered(dir, "tile") {
		if n, _ := strconv.ParseInt(sysString(filepath.Join(dir, t, "physical_vram_size_bytes")), 10, 64); n > 0 {
			return true
		}
	}
	for _, c := range cards {
		if n, _ := strconv.ParseInt(sysString(filepath.Join(dir, "drm", c, "lmem_total_bytes")), 10, 64); n > 0 {
			return true
		}
	}
	return false
}

// kfdOrder maps the render minor of each GPU node of the KFD topology to its
// index among them, the index ROCR_VISIBLE_DEVICES takes: ROCm counts the
// nodes with compute units (simd_count), in node order.
func kfdOrder(root string) map[int]int {
	dir := filepath.Join(root, "sys", "class", "kfd", "kfd", "topology", "nodes")
	order := map[int]int{}
	for _, n := range numbered(dir, "") {
		f, err := os.Open(filepath.Join(dir, n, "properties"))
		if err != nil {
			continue
		}
		simd, minor := 0, -1
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
			switch k {
			case "simd_count":
				simd, _ = strconv.Atoi(v)
			case "drm_render_minor":
				minor, _ = strconv.Atoi(v)
			}
		}
		f.Close()
		if simd > 0 {
			order[minor] = len(order)
		}
	}
	return order
}

// numbered lists the entries of dir named prefix and a number, by number.
func numbered(dir, prefix string) []string {
	entries, _ := os.ReadDir(dir)
	type entry struct {
		name string
		n    int
	}
	var found []entry
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if n, err := strconv.Atoi(rest); ok && err == nil && rest == strconv.Itoa(n) && n >= 0 {
			found = append(found, entry{e.Name(), n})
		}
	}
	slices.SortFunc(found, func(a, b entry) int { return a.n - b.n })
	names := make([]string, len(found))
	for i, e := range found {
		names[i] = e.name
	}
	return names
}

func sysString(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

func sysHex(path string) uint64 {
	v, _ := strconv.ParseUint(strings.TrimPrefix(sysString(path), "0x"), 16, 32)
	return v
}
