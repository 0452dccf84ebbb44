package registry

import (
	"context"
	"testing"

	"github.com/distribution/distribution/v3/registry/storage/driver/inmemory"
)

func TestNewOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []Option
		wantErr bool
	}{
		{"defaults", nil, false},
		{"manifest size", []Option{WithMaxManifestSize(1 << 10)}, false},
		{"zero manifest size", []Option{WithMaxManifestSize(0)}, true},
		{"nil logger", []Option{WithLogger(nil)}, true},
		{"nil observer", []Option{WithUploadObserver(nil)}, true},
		{"nil listener", []Option{WithManifestListener(nil)}, true},
		{"nil clock", []Option{WithClock(nil)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), inmemory.New(), tt.opts...)
			if (err != nil) != tt.wantErr {
				t.Errorf("New() error = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	if _, err := New(context.Background(), nil); err == nil {
		t.Error("New with a nil driver succeeded")
	}
}
