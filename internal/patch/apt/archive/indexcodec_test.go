package archive

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestIndexCodecRoundTrip(t *testing.T) {
	list, err := ParsePackages(strings.NewReader(packagesText), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) < 2 {
		t.Fatalf("fixture has %d packages", len(list))
	}
	got, err := decodeIndex(encodeIndex(list))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, list) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", got, list)
	}
	if got, err := decodeIndex(encodeIndex(nil)); err != nil || len(got) != 0 {
		t.Errorf("empty index: %v, %v", got, err)
	}
}

func TestIndexCodecRefuses(t *testing.T) {
	list, _ := ParsePackages(strings.NewReader(packagesText), "test")
	good := encodeIndex(list)
	for name, data := range map[string][]byte{
		"empty":     nil,
		"bad magic": append([]byte("ddkidx9\n"), good[len(indexMagic):]...),
		"truncated": good[:len(good)-3],
		"trailing":  append(append([]byte{}, good...), 0),
	} {
		if _, err := decodeIndex(data); !errors.Is(err, errIndexCodec) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeIndex(f *testing.F) {
	list, _ := ParsePackages(strings.NewReader(packagesText), "test")
	f.Add(encodeIndex(list))
	f.Add([]byte(indexMagic + "\x01\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeIndex(data)
		if err == nil {
			// What decodes encodes back to something that decodes the same.
			again, err := decodeIndex(encodeIndex(got))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("re-encoding: %v", err)
			}
		}
	})
}
