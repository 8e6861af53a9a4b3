package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pando-wms/pando/dispatcher/api"
	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/plugins/storage"
)

// Presigned URLs live for the job's walltime plus this margin (stage-in
// before the walltime starts, stage-out after it), at most S3's week.
const (
	presignMargin = 30 * time.Minute
	presignMax    = 7 * 24 * time.Hour
	// storageTimeout bounds one listing or stat at submit and report time.
	storageTimeout = 30 * time.Second
)

// endpoint returns the named storage endpoint, or an ErrInvalid naming the field.
func (s *Server) endpoint(field, name string) (storage.Endpoint, error) {
	ep, ok := s.cfg.Storage[name]
	if !ok {
		known := make([]string, 0, len(s.cfg.Storage))
		for n := range s.cfg.Storage {
			known = append(known, n)
		}
		slices.Sort(known)
		if len(known) == 0 {
			return nil, fmt.Errorf("%w: %s: no storage endpoint %q: this dispatcher has none (pando dispatcher --storage FILE)", api.ErrInvalid, field, name)
		}
		return nil, fmt.Errorf("%w: %s: no storage endpoint %q (known: %s)", api.ErrInvalid, field, name, strings.Join(known, ", "))
	}
	// Pilots hold no credentials: they read and write through URLs
	// presigned here, which an endpoint must be able to make.
	if _, err := ep.Presign(context.Background(), http.MethodGet, "bucket", "probe", time.Minute); errors.Is(err, storage.ErrUnsupported) {
		return nil, fmt.Errorf("%w: %s: endpoint %q cannot presign URLs for pilots: %v", api.ErrInvalid, field, name, err)
	}
	return ep, nil
}

// storageErr turns an endpoint's error into the API's kinds.
func storageErr(what string, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%w: %s: %v", api.ErrInvalid, what, err)
	case errors.Is(err, storage.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %s: storage unreachable: %v", api.ErrUnavailable, what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// resolveData lists a task's inputs (a dataset's objects, or each named
// file's size and checksum), sets spec.Jobs from files_per_job and returns
// the inputs in order, their JobID still unset. It also checks that the
// output endpoint exists.
func (s *Server) resolveData(ctx context.Context, spec *task.Spec) ([]store.File, error) {
	if spec.Outputs != nil {
		if _, err := s.endpoint("outputs.endpoint", spec.Outputs.Endpoint); err != nil {
			return nil, err
		}
	}
	in := spec.Inputs
	if in == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, storageTimeout)
	defer cancel()
	var files []store.File
	if in.Dataset() {
		ep, err := s.endpoint("inputs.endpoint", in.Endpoint)
		if err != nil {
			return nil, err
		}
		infos, err := ep.List(ctx, in.Bucket, in.Prefix)
		what := fmt.Sprintf("inputs: list %s:%s/%s", in.Endpoint, in.Bucket, in.Prefix)
		if err != nil {
			return nil, storageErr(what, err)
		}
		if len(infos) == 0 {
			return nil, fmt.Errorf("%w: %s: the dataset holds no files", api.ErrInvalid, what)
		}
		for _, inf := range infos {
			files = append(files, store.File{Endpoint: in.Endpoint, Bucket: in.Bucket, Path: inf.Path,
				Size: inf.Size, Adler32: inf.Adler32})
		}
	} else {
		files = make([]store.File, len(in.Files))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for i, f := range in.Files {
			field := fmt.Sprintf("inputs[%d]", i)
			ep, err := s.endpoint(field+".endpoint", f.Endpoint)
			if err != nil {
				return nil, err
			}
			g.Go(func() error {
				inf, err := ep.Stat(gctx, f.Bucket, f.Path)
				if err != nil {
					return storageErr(field+": "+f.String(), err)
				}
				files[i] = store.File{Endpoint: f.Endpoint, Bucket: f.Bucket, Path: f.Path, Size: inf.Size, Adler32: inf.Adler32}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}
	if len(files) > task.MaxJobs*spec.FilesPerJob {
		return nil, fmt.Errorf("%w: inputs: %d files make more than %d jobs", api.ErrInvalid, len(files), task.MaxJobs)
	}
	spec.Jobs = spec.JobsFor(len(files))
	for _, f := range files {
		if ts, ok := s.tapes[f.Endpoint]; ok && spec.FilesPerJob > ts.win.Files {
			return nil, fmt.Errorf("%w: files_per_job: %d files per job cannot be staged together through the %d-file window of tape endpoint %q",
				api.ErrInvalid, spec.FilesPerJob, ts.win.Files, f.Endpoint)
		}
	}
	seen := map[string]int{}
	for i := range files {
		f := &files[i]
		f.Dir, f.Index, f.Name = store.Input, i%spec.FilesPerJob, path.Base(f.Path)
		if f.Index == 0 {
			clear(seen)
		}
		if k, dup := seen[f.Name]; dup {
			ref := func(f store.File) string {
				return task.FileRef{Endpoint: f.Endpoint, Bucket: f.Bucket, Path: f.Path}.String()
			}
			return nil, fmt.Errorf("%w: inputs: %s and %s would both be %q in job %d's input directory",
				api.ErrInvalid, ref(files[k]), ref(*f), f.Name, i/spec.FilesPerJob)
		}
		seen[f.Name] = i
	}
	return files, nil
}

// presignTTL is how long an attempt's URLs must live.
func presignTTL(walltime time.Duration) time.Duration {
	return min(walltime+presignMargin, presignMax)
}

// presignInputs fills in the URLs of an Assign's inputs. A URL that cannot
// be made is left empty: the pilot asks again (URLRequest) and fails the
// attempt with a staging error if that fails too.
func (s *Server) presignInputs(a *wire.Assign) {
	ttl := presignTTL(time.Duration(a.Resources.WalltimeSecs) * time.Second)
	for i := range a.Inputs {
		u, err := s.presign(http.MethodGet, a.Inputs[i].Source, ttl)
		if err != nil {
			s.log.Warn("presign input", "job", a.JobID, "file", a.Inputs[i].Source, "err", err)
			continue
		}
		a.Inputs[i].URL = u
	}
}

// presign makes a URL for source (ENDPOINT:BUCKET/PATH).
func (s *Server) presign(method, source string, ttl time.Duration) (string, error) {
	name, rest, _ := strings.Cut(source, ":")
	bucket, key, _ := strings.Cut(rest, "/")
	ep, ok := s.cfg.Storage[name]
	if !ok {
		return "", fmt.Errorf("no storage endpoint %q", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storageTimeout)
	defer cancel()
	u, err := ep.Presign(ctx, method, bucket, key, ttl)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// urls answers a pilot's request for fresh input URLs or output PUT URLs.
func (s *Server) urls(agentID string, req *wire.URLRequest) *wire.URLs {
	refuse := func(code errcode.Code, format string, args ...any) *wire.URLs {
		return &wire.URLs{Code: int(code), Message: fmt.Sprintf(format, args...)}
	}
	d, err := s.broker.Data(agentID, req.JobID, req.Attempt)
	if err != nil {
		return refuse(errcode.DispatcherStale, "%v", err)
	}
	ttl := presignTTL(d.Walltime)
	out := &wire.URLs{}
	for _, name := range req.Inputs {
		k := slices.IndexFunc(d.Inputs, func(f wire.InputFile) bool { return f.Name == name })
		if k < 0 {
			return refuse(errcode.StageInFailed, "job %d has no input %q", req.JobID, name)
		}
		u, err := s.presign(http.MethodGet, d.Inputs[k].Source, ttl)
		if err != nil {
			return refuse(errcode.StageInFailed, "presign %s: %v", d.Inputs[k].Source, err)
		}
		out.Inputs = append(out.Inputs, u)
	}
	if len(req.Outputs) > 0 && d.Outputs == nil {
		return refuse(errcode.StageOutFailed, "job %d's task declares no outputs", req.JobID)
	}
	for _, name := range req.Outputs {
		if !validOutputName(name) {
			return refuse(errcode.StageOutFailed, "bad output name %q", name)
		}
		o := d.Outputs
		src := task.FileRef{Endpoint: o.Endpoint, Bucket: o.Bucket,
			Path: o.OutputKey(d.TaskID, req.JobID, d.Index, req.Attempt, name)}.String()
		u, err := s.presign(http.MethodPut, src, ttl)
		if err != nil {
			return refuse(errcode.StageOutFailed, "presign %s: %v", src, err)
		}
		out.Outputs = append(out.Outputs, u)
	}
	return out
}

// validOutputName accepts a clean relative path, as stage.Outputs makes them.
func validOutputName(name string) bool {
	return name != "" && name == path.Clean(name) && !path.IsAbs(name) &&
		name != ".." && !strings.HasPrefix(name, "../") && !strings.ContainsRune(name, 0)
}

// checkOutputs verifies, before a successful report is accepted, that
// every output it lists is stored whole (by size: a presigned PUT cannot
// carry the checksum, which the report's adler32 records instead). A
// missing or short object turns the report into a stage-out failure; an
// endpoint that cannot be reached returns an error, and the pilot resends
// the report later.
func (s *Server) checkOutputs(ctx context.Context, agentID string, open *wire.JobOpen, rep *wire.Report) error {
	if rep.ErrorCode != 0 || rep.ExitCode != 0 || len(rep.Outputs) == 0 {
		return nil
	}
	d, err := s.broker.Data(agentID, open.JobID, open.Attempt)
	if err != nil || d.Outputs == nil {
		return nil // the broker refuses the report, or records no outputs
	}
	ep, ok := s.cfg.Storage[d.Outputs.Endpoint]
	if !ok {
		return fmt.Errorf("no storage endpoint %q", d.Outputs.Endpoint)
	}
	ctx, cancel := context.WithTimeout(ctx, storageTimeout)
	defer cancel()
	for _, f := range rep.Outputs {
		key := d.Outputs.OutputKey(d.TaskID, open.JobID, d.Index, open.Attempt, f.Name)
		inf, err := ep.Stat(ctx, d.Outputs.Bucket, key)
		if err == nil && inf.Size != f.Size {
			err = fmt.Errorf("stored %d bytes, the pilot sent %d", inf.Size, f.Size)
		}
		if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("check output %s: %w", f.Name, err)
		}
		if err != nil {
			rep.ExitCode, rep.ErrorCode = -1, int(errcode.StageOutFailed)
			rep.Error = fmt.Sprintf("output %s not stored whole at %s:%s/%s: %v", f.Name, d.Outputs.Endpoint, d.Outputs.Bucket, key, err)
			rep.Outputs = nil
			return nil
		}
	}
	return nil
}
