package api

import (
	"slices"
	"testing"
)

// TestCompareTags: patch tags in the order they were written, a trailing
// number compared as a number.
func TestCompareTags(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"1.27.1-10", "1.27.1-2", "1.27.1-1"}, []string{"1.27.1-1", "1.27.1-2", "1.27.1-10"}},
		{[]string{"b-1", "a-2", "a-10"}, []string{"a-2", "a-10", "b-1"}},
		{[]string{"1.27.1-patched", "1.27.1-3", "1.27.1-1"}, []string{"1.27.1-1", "1.27.1-3", "1.27.1-patched"}},
		{[]string{"x", "x-1", "w"}, []string{"w", "x", "x-1"}},
	} {
		got := slices.Clone(tc.in)
		slices.SortFunc(got, compareTags)
		if !slices.Equal(got, tc.want) {
			t.Errorf("sorted %v = %v, want %v", tc.in, got, tc.want)
		}
	}
}
