package testenv

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// ownerLock is the file in a test server's directory its owner holds an
// exclusive lock on for as long as it lives.
const ownerLock = "owner.lock"

var (
	ownedMu sync.Mutex
	owned   []*os.File // kept open (and reachable) for the process's lifetime
)

// OwnDir marks dir as this process's for the rest of its life: an exclusive
// flock on dir/owner.lock, which the kernel drops only when the process
// exits. Unlike a PID written into the directory, the lock means the same
// to every process, whatever PID namespace each runs in, and cannot be
// mistaken for a recycled PID.
func OwnDir(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, ownerLock), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return err
	}
	ownedMu.Lock()
	owned = append(owned, f)
	ownedMu.Unlock()
	return nil
}

// SweepDirs calls remove for each directory matching pattern whose owner
// (see OwnDir) is gone; remove runs while this process holds the dead
// owner's lock, so two sweepers never remove the same directory. A
// directory without an owner.lock, or whose owner lives, is left alone.
func SweepDirs(pattern string, remove func(dir string)) {
	dirs, _ := filepath.Glob(pattern)
	for _, d := range dirs {
		f, err := os.OpenFile(filepath.Join(d, ownerLock), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		// A live owner holds the lock (EWOULDBLOCK); any other error
		// leaves the directory too, rather than guess.
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			remove(d)
		}
		f.Close()
	}
}
