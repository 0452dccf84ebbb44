package workflow

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// NotAvailable is what ACR's list shows for an absent field.
const NotAvailable = "---Not Available---"

// NoPatchImage is ACR's last_patched_image when the image has no patch.
const NoPatchImage = "---No patch image available---"

// ImageStatus is one row of list-runs: ACR's columns (image, scan status
// and date and task, patch status and date and task, last patched image,
// workflow type, reasons) read from the ledger, never from logs.
type ImageStatus struct {
	Image            string    `json:"image"`
	Run              string    `json:"run"`
	ScanStatus       State     `json:"scan_status"`
	ScanDate         time.Time `json:"scan_date,omitzero"`
	ScanTask         string    `json:"scan_task_id"`
	PatchStatus      State     `json:"patch_status"`
	PatchDate        time.Time `json:"patch_date,omitzero"`
	PatchTask        string    `json:"patch_task_id,omitempty"`
	LastPatchedImage string    `json:"last_patched_image"`
	WorkflowType     string    `json:"workflow_type"`
	// Signals says what made the scan ask for a patch.
	Signals           []string `json:"signals,omitempty"`
	PatchSkipReason   string   `json:"patch_skipped_reason,omitempty"`
	ScanErrorReason   string   `json:"scan_error_reason,omitempty"`
	PatchErrorReason  string   `json:"patch_error_reason,omitempty"`
	FixableBefore     int      `json:"fixable_before"`
	FixableAfter      *int     `json:"fixable_after,omitempty"`
	TagWritten        string   `json:"tag_written,omitempty"`
	SecurityUpdates   int      `json:"security_updates,omitempty"`
	OperatingSystem   string   `json:"os,omitempty"`
	SupportEnd        string   `json:"support_end,omitempty"`
	ScanTarget        string   `json:"scan_target,omitempty"`
	ScanDigest        string   `json:"scan_digest,omitempty"`
	PatchedDigest     string   `json:"patched_digest,omitempty"`
	PackagesUpdated   int      `json:"packages_updated,omitempty"`
	PatchSharedWith   string   `json:"patch_shared_with,omitempty"`
	PatchUnchangedFor string   `json:"patch_same_as,omitempty"`
}

// Overall is the row's status as ACR's filter sees it: the patch task's
// when there is one, else the scan's.
func (s ImageStatus) Overall() State {
	if s.PatchTask != "" {
		return s.PatchStatus
	}
	return s.ScanStatus
}

// StatusList is list-runs' answer.
type StatusList struct {
	Workflow string        `json:"workflow"`
	Since    time.Time     `json:"since"`
	Images   []ImageStatus `json:"images"`
}

// StatusRequest filters list-runs.
type StatusRequest struct {
	Name string
	// Status keeps rows in this state (ACR's --run-status): skipped means
	// scanned and not patched; succeeded includes those.
	Status State
	// Image keeps the rows of one image: NAME:TAG (a namespace prefix is
	// ignored).
	Image string
}

// ImageStatuses is list-runs: per image, its newest scan in the
// workflow's runs of the last N days (N from the schedule, as ACR does).
func (e *Engine) ImageStatuses(ctx context.Context, req StatusRequest) (*StatusList, error) {
	if err := validStatus(req.Status); err != nil {
		return nil, err
	}
	w, err := e.o.Store.Workflow(ctx, cmp.Or(req.Name, DefaultName))
	if err != nil {
		return nil, err
	}
	since := e.clock.Now().Add(-w.Schedule.Window())
	runs, err := e.o.Store.Runs(ctx, RunFilter{Workflow: w.Name, Since: since})
	if err != nil {
		return nil, err
	}
	want := ""
	if req.Image != "" {
		want = NameOf(req.Image)
		if !strings.Contains(want, ":") {
			return nil, fmt.Errorf("%w: --image %q: want NAME:TAG", ErrInvalid, req.Image)
		}
	}
	out := &StatusList{Workflow: w.Name, Since: since, Images: []ImageStatus{}}
	seen := map[string]bool{}
	for _, r := range runs { // newest first: the newest scan wins
		for _, t := range r.Tasks {
			if t.Kind != TaskScan || seen[t.Image] || (want != "" && t.Image != want) {
				continue
			}
			seen[t.Image] = true
			st := imageStatus(r, &t)
			if keep(st, req.Status) {
				out.Images = append(out.Images, st)
			}
		}
	}
	slices.SortFunc(out.Images, func(a, b ImageStatus) int { return strings.Compare(a.Image, b.Image) })
	return out, nil
}

func keep(s ImageStatus, want State) bool {
	switch want {
	case "":
		return true
	case StateSkipped:
		return s.ScanStatus == StateSucceeded && s.PatchStatus == StateSkipped
	case StateSucceeded:
		return s.Overall() == StateSucceeded || (s.ScanStatus == StateSucceeded && s.PatchStatus == StateSkipped)
	}
	return s.Overall() == want
}

func imageStatus(r *Run, t *Task) ImageStatus {
	s := ImageStatus{Image: t.Image, Run: r.ID, ScanStatus: t.State, ScanDate: t.StartedAt, ScanTask: t.ID, WorkflowType: WorkflowType}
	if s.ScanDate.IsZero() {
		s.ScanDate = t.CreatedAt
	}
	if t.State == StateFailed {
		s.ScanErrorReason = t.Error
	}
	name, _, _ := strings.Cut(t.Image, ":")
	last := ""
	if sc := t.Scan; sc != nil {
		s.Signals = sc.Signals
		s.FixableBefore = sc.Fixable.Total()
		s.SecurityUpdates = len(sc.SecurityUpdates)
		s.OperatingSystem, s.SupportEnd = sc.OS, sc.SupportEnd
		s.ScanTarget, s.ScanDigest = sc.Target, sc.Digest
		if sc.Match.Latest != "" {
			last = name + ":" + sc.Match.Latest
		}
		if t.State == StateSucceeded && !sc.Patch {
			s.PatchStatus, s.PatchSkipReason = StateSkipped, sc.SkipReason
		}
	}
	if p := r.ImageTask(TaskPatch, t.Image); p != nil {
		s.PatchTask, s.PatchStatus = p.ID, p.State
		s.PatchDate = cmp.Or(p.StartedAt, p.CreatedAt)
		if p.State == StateFailed {
			s.PatchErrorReason = p.Error
		}
		if pr := p.Patch; pr != nil {
			if p.State == StateSkipped {
				s.PatchSkipReason = pr.SkipReason
			}
			s.PatchedDigest, s.PackagesUpdated, s.PatchSharedWith = pr.Digest, len(pr.Packages), pr.SharedWith
			s.PatchUnchangedFor = pr.SameAs
			if pr.FixableAfter != nil || pr.Digest != "" {
				n := pr.FixableAfter.Total()
				s.FixableAfter = &n
			}
			if pr.TagWritten {
				s.TagWritten = name + ":" + pr.Tag
				last = s.TagWritten
			}
		}
	} else if s.PatchStatus == "" {
		// Scan not finished (or failed): no patch decision yet.
		s.PatchStatus = ""
	}
	s.LastPatchedImage = cmp.Or(last, NoPatchImage)
	return s
}
