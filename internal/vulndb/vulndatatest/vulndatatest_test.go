package vulndatatest

import (
	"path/filepath"
	"testing"
)

func TestDirFromEnv(t *testing.T) {
	d := t.TempDir()
	t.Setenv(Env, d)
	if got := Dir(t); got != d {
		t.Errorf("Dir = %q, want %q", got, d)
	}
}

func TestDirSkipsWhenEnvIsNotADirectory(t *testing.T) {
	t.Setenv(Env, filepath.Join(t.TempDir(), "missing"))
	ok := t.Run("inner", func(t *testing.T) {
		Dir(t)
		t.Error("Dir returned instead of skipping")
	})
	if !ok {
		t.Error("inner test failed")
	}
}
