package kube

import (
	"strings"
	"testing"
)

func TestPodContainers(t *testing.T) {
	for _, tc := range []struct {
		name, raw, path string
		want            []string // kind name image path
		err             string
	}{
		{"pod", `{"metadata":{"name":"p","namespace":"a"},"spec":{"initContainers":[{"name":"i","image":"x"}],"containers":[{"name":"c","image":"y"},{"name":"d","image":"z"}],"ephemeralContainers":[{"name":"e","image":"w"}]}}`, "/spec",
			[]string{"initContainer i x /spec/initContainers/0/image", "container c y /spec/containers/0/image", "container d z /spec/containers/1/image", "ephemeralContainer e w /spec/ephemeralContainers/0/image"}, ""},
		{"cronjob", `{"metadata":{"generateName":"n-"},"spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"y"}]}}}}}}`, "/spec/jobTemplate/spec/template/spec",
			[]string{"container c y /spec/jobTemplate/spec/template/spec/containers/0/image"}, ""},
		{"no template", `{"metadata":{},"spec":{}}`, "/spec/template/spec", nil, ""},
		{"null template", `{"spec":{"template":null}}`, "/spec/template/spec", nil, ""},
		{"containers not a list", `{"spec":{"containers":"x"}}`, "/spec", nil, "reading the pod spec"},
		{"spec not an object", `{"spec":[1]}`, "/spec/template/spec", nil, "reading /spec/template/spec"},
		{"not json", `{`, "/spec", nil, "metadata"},
	} {
		meta, cs, err := PodContainers([]byte(tc.raw), tc.path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, c := range cs {
			got = append(got, c.Kind+" "+c.Name+" "+c.Image+" "+c.Path)
		}
		if strings.Join(got, ";") != strings.Join(tc.want, ";") {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
		if tc.name == "cronjob" && meta.DisplayName() != "n-*" {
			t.Errorf("generated name shown as %q", meta.DisplayName())
		}
	}
}

func FuzzPodContainers(f *testing.F) {
	f.Add([]byte(`{"spec":{"containers":[{"name":"c","image":"y"}]}}`), "/spec")
	f.Add([]byte(`{"spec":{"template":{"spec":{"initContainers":[{"image":"x"}]}}}}`), "/spec/template/spec")
	f.Fuzz(func(t *testing.T, raw []byte, path string) {
		if !strings.HasPrefix(path, "/") || len(path) > 100 {
			return
		}
		_, cs, err := PodContainers(raw, path)
		if err != nil {
			return
		}
		for _, c := range cs {
			if !strings.HasPrefix(c.Path, path+"/") || !strings.HasSuffix(c.Path, "/image") {
				t.Fatalf("path %q for spec %q", c.Path, path)
			}
		}
	})
}
