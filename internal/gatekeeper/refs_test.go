package gatekeeper

import (
	"errors"
	"strings"
	"testing"
)

var testDigest = "sha256:" + strings.Repeat("ab", 32)

func TestParseRef(t *testing.T) {
	tests := []struct {
		ref              string
		wantRepo, wantRf string
		wantErr          bool
	}{
		{ref: "quarantine/app:1", wantRepo: "quarantine/app", wantRf: "1"},
		{ref: "quarantine/a/b:1.2-rc", wantRepo: "quarantine/a/b", wantRf: "1.2-rc"},
		{ref: "quarantine/app", wantRepo: "quarantine/app", wantRf: "latest"},
		{ref: "  quarantine/app:1\t", wantRepo: "quarantine/app", wantRf: "1"},
		{ref: "quarantine/app@" + testDigest, wantRepo: "quarantine/app", wantRf: testDigest},
		{ref: "live/a/b@" + testDigest, wantRepo: "live/a/b", wantRf: testDigest},
		// NAME:TAG@DIGEST: the digest wins.
		{ref: "quarantine/app:1@" + testDigest, wantRepo: "quarantine/app", wantRf: testDigest},
		// A registry host is not part of a reference to the server's images.
		{ref: "host:5000/app", wantErr: true},
		{ref: "", wantErr: true},
		{ref: "app:1", wantErr: true},
		{ref: "app", wantErr: true},
		{ref: "live", wantErr: true},
		{ref: "app@" + testDigest, wantErr: true},
		{ref: ":1", wantErr: true},
		{ref: "quarantine/app:", wantErr: true},
		{ref: "quarantine/app@", wantErr: true},
		{ref: "@" + testDigest, wantErr: true},
		{ref: "quarantine/App:1", wantErr: true},
		{ref: "quarantine/../live/app:1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			r, err := ParseRef(tt.ref)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseRef(%q) = %+v; want an error", tt.ref, r)
				}
				if !errors.Is(err, ErrInvalidRequest) {
					t.Errorf("ParseRef(%q) error %v does not wrap ErrInvalidRequest", tt.ref, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRef(%q): %v", tt.ref, err)
			}
			if r.Repository != tt.wantRepo || r.Ref() != tt.wantRf {
				t.Errorf("ParseRef(%q) = %q, %q; want %q, %q", tt.ref, r.Repository, r.Ref(), tt.wantRepo, tt.wantRf)
			}
		})
	}
}

func TestPlanPromotion(t *testing.T) {
	tests := []struct {
		name                             string
		req                              PromoteRequest
		srcRepo, srcRef, dstRepo, dstTag string
		wantErr                          string // substring of the error; "" = success
	}{
		{
			name:    "tag, default target",
			req:     PromoteRequest{Source: "quarantine/a/b:1"},
			srcRepo: "quarantine/a/b", srcRef: "1", dstRepo: "live/a/b", dstTag: "1",
		},
		{
			name:    "no tag means latest",
			req:     PromoteRequest{Source: "quarantine/app"},
			srcRepo: "quarantine/app", srcRef: "latest", dstRepo: "live/app", dstTag: "latest",
		},
		{
			name:    "digest, default target has no tag",
			req:     PromoteRequest{Source: "quarantine/app@" + testDigest},
			srcRepo: "quarantine/app", srcRef: testDigest, dstRepo: "live/app", dstTag: "",
		},
		{
			name:    "target with tag",
			req:     PromoteRequest{Source: "quarantine/app:1", Target: "live/web:stable"},
			srcRepo: "quarantine/app", srcRef: "1", dstRepo: "live/web", dstTag: "stable",
		},
		{
			name:    "target without tag keeps the source tag",
			req:     PromoteRequest{Source: "quarantine/app:1", Target: "live/team/web"},
			srcRepo: "quarantine/app", srcRef: "1", dstRepo: "live/team/web", dstTag: "1",
		},
		{
			name:    "digest to a target without tag",
			req:     PromoteRequest{Source: "quarantine/app@" + testDigest, Target: "live/web"},
			srcRepo: "quarantine/app", srcRef: testDigest, dstRepo: "live/web", dstTag: "",
		},
		{
			name:    "digest to a target with tag",
			req:     PromoteRequest{Source: "quarantine/app@" + testDigest, Target: "live/web:2"},
			srcRepo: "quarantine/app", srcRef: testDigest, dstRepo: "live/web", dstTag: "2",
		},
		{name: "source in live", req: PromoteRequest{Source: "live/app:1"}, wantErr: "must be in quarantine/"},
		{name: "source elsewhere", req: PromoteRequest{Source: "other/app:1"}, wantErr: "must be in quarantine/"},
		{name: "source prefix without slash", req: PromoteRequest{Source: "quarantined/app:1"}, wantErr: "must be in quarantine/"},
		{name: "source without namespace", req: PromoteRequest{Source: "app:1"}, wantErr: "name a namespace"},
		{name: "source is the namespace quarantine itself", req: PromoteRequest{Source: "quarantine:1"}, wantErr: "name a namespace"},
		{name: "empty source", req: PromoteRequest{}, wantErr: "want NAMESPACE/NAME"},
		{name: "target not live", req: PromoteRequest{Source: "quarantine/app:1", Target: "quarantine/app:2"}, wantErr: "must be live/NAME"},
		{name: "target prefix without slash", req: PromoteRequest{Source: "quarantine/app:1", Target: "lively/app"}, wantErr: "must be live/NAME"},
		{name: "target without namespace", req: PromoteRequest{Source: "quarantine/app:1", Target: "app:1"}, wantErr: "must be live/NAME"},
		{name: "bare live/", req: PromoteRequest{Source: "quarantine/app:1", Target: "live/"}, wantErr: "must be live/NAME"},
		{name: "the repository live itself", req: PromoteRequest{Source: "quarantine/app:1", Target: "live:1"}, wantErr: "must be live/NAME"},
		{name: "target with dot segments", req: PromoteRequest{Source: "quarantine/app:1", Target: "live/../quarantine/app:1"}, wantErr: "must be live/NAME"},
		{name: "bare live/ with tag", req: PromoteRequest{Source: "quarantine/app:1", Target: "live/:1"}, wantErr: "must be live/NAME"},
		{name: "target tag invalid", req: PromoteRequest{Source: "quarantine/app:1", Target: "live/app:-bad"}, wantErr: `tag "-bad"`},
		{name: "target name uppercase", req: PromoteRequest{Source: "quarantine/app:1", Target: "live/App:1"}, wantErr: `component "App"`},
		{name: "target empty tag", req: PromoteRequest{Source: "quarantine/app:1", Target: "live/app:"}, wantErr: "empty tag"},
		{name: "target with digest", req: PromoteRequest{Source: "quarantine/app:1", Target: "live/app@" + testDigest}, wantErr: "names a digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcRepo, srcRef, dstRepo, dstTag, err := PlanPromotion(tt.req)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("PlanPromotion(%+v) = %q %q %q %q; want an error", tt.req, srcRepo, srcRef, dstRepo, dstTag)
				}
				if !errors.Is(err, ErrInvalidRequest) {
					t.Errorf("error %v does not wrap ErrInvalidRequest", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not mention %q", err, tt.wantErr)
				}
				if srcRepo != "" || srcRef != "" || dstRepo != "" || dstTag != "" {
					t.Errorf("names returned with the error: %q %q %q %q", srcRepo, srcRef, dstRepo, dstTag)
				}
				return
			}
			if err != nil {
				t.Fatalf("PlanPromotion(%+v): %v", tt.req, err)
			}
			got := [4]string{srcRepo, srcRef, dstRepo, dstTag}
			want := [4]string{tt.srcRepo, tt.srcRef, tt.dstRepo, tt.dstTag}
			if got != want {
				t.Errorf("PlanPromotion(%+v) = %q; want %q", tt.req, got, want)
			}
		})
	}
}
