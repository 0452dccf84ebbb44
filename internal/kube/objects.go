package kube

import (
	"encoding/json"
	"fmt"
	"strconv"
)

// Workload kinds whose pod templates admission checks, with the JSON
// pointer of the pod spec in each. Pods themselves (and their
// ephemeralcontainers subresource) are checked at /spec.
var podSpecPaths = map[string]string{
	"/Pod":                   "/spec",
	"/PodTemplate":           "/template/spec",
	"/ReplicationController": "/spec/template/spec",
	"apps/Deployment":        "/spec/template/spec",
	"apps/StatefulSet":       "/spec/template/spec",
	"apps/DaemonSet":         "/spec/template/spec",
	"apps/ReplicaSet":        "/spec/template/spec",
	"batch/Job":              "/spec/template/spec",
	"batch/CronJob":          "/spec/jobTemplate/spec/template/spec",
}

// PodSpecPath returns the JSON pointer of the pod spec in an object of
// group/kind, or false for a kind admission does not check.
func PodSpecPath(group, kind string) (string, bool) {
	p, ok := podSpecPaths[group+"/"+kind]
	return p, ok
}

// podSpecJSON holds what admission reads of a pod spec.
type podSpecJSON struct {
	Containers          []containerJSON `json:"containers"`
	InitContainers      []containerJSON `json:"initContainers"`
	EphemeralContainers []containerJSON `json:"ephemeralContainers"`
}

type containerJSON struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

// ObjectMeta is what admission reads of an object's metadata.
type ObjectMeta struct {
	Name         string `json:"name"`
	GenerateName string `json:"generateName"`
	Namespace    string `json:"namespace"`
}

// DisplayName is the object's name, or its generateName followed by "*"
// for an object created with a generated name.
func (m ObjectMeta) DisplayName() string {
	if m.Name == "" && m.GenerateName != "" {
		return m.GenerateName + "*"
	}
	return m.Name
}

// PodContainers reads the containers of the pod spec at specPath in the
// JSON object raw: containers, init containers and ephemeral containers,
// each with the JSON pointer of its image field.
func PodContainers(raw []byte, specPath string) (ObjectMeta, []Container, error) {
	var meta struct {
		Metadata ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return ObjectMeta{}, nil, fmt.Errorf("reading the object's metadata: %w", err)
	}
	spec, err := specAt(raw, specPath)
	if err != nil {
		return meta.Metadata, nil, err
	}
	var out []Container
	add := func(kind, field string, cs []containerJSON) {
		for i, c := range cs {
			out = append(out, Container{Kind: kind, Name: c.Name, Image: c.Image,
				Path: specPath + "/" + field + "/" + strconv.Itoa(i) + "/image"})
		}
	}
	add(KindInitContainer, "initContainers", spec.InitContainers)
	add(KindContainer, "containers", spec.Containers)
	add(KindEphemeralContainer, "ephemeralContainers", spec.EphemeralContainers)
	return meta.Metadata, out, nil
}

// specAt decodes the pod spec at a JSON pointer of plain object keys.
func specAt(raw []byte, path string) (podSpecJSON, error) {
	cur := json.RawMessage(raw)
	for _, key := range splitPointer(path) {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(cur, &m); err != nil {
			return podSpecJSON{}, fmt.Errorf("reading %s: %w", path, err)
		}
		next, ok := m[key]
		if !ok || string(next) == "null" {
			return podSpecJSON{}, nil // no template: nothing to check
		}
		cur = next
	}
	var spec podSpecJSON
	if err := json.Unmarshal(cur, &spec); err != nil {
		return podSpecJSON{}, fmt.Errorf("reading the pod spec at %s: %w", path, err)
	}
	return spec, nil
}

func splitPointer(p string) []string {
	var out []string
	start := 1
	for i := 1; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			if i > start {
				out = append(out, p[start:i])
			}
			start = i + 1
		}
	}
	return out
}
