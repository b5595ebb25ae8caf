// Command tekton-validate runs Tekton's admission checks on manifest files, without a cluster.
//
// Tekton's validating webhook does more than the CRD schema can: it checks the task graph
// (runAfter and result references to tasks that exist, no cycles), parameter and workspace usage
// and result names. Those checks are the SetDefaults and Validate methods of the types in
// github.com/tektoncd/pipeline/pkg/apis/pipeline/v1, which the webhook calls after decoding with
// unknown fields disallowed; this command does the same for every Tekton object in the files.
//
// Output: one JSON object per line and document. Exit 0 when every Tekton object is valid, 1
// when one is not, 2 when a file cannot be read or parsed.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"
)

const pipelineModule = "github.com/tektoncd/pipeline"

type object interface {
	apis.Defaultable
	apis.Validatable
}

type result struct {
	File       string   `json:"file"`
	Document   int      `json:"document"`
	APIVersion string   `json:"apiVersion,omitempty"`
	Kind       string   `json:"kind,omitempty"`
	Name       string   `json:"name,omitempty"`
	Status     string   `json:"status"` // valid, invalid, skipped, error
	Errors     []string `json:"errors,omitempty"`
}

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name         string `json:"name"`
		GenerateName string `json:"generateName"`
	} `json:"metadata"`
}

func newObject(gvk schema.GroupVersionKind) object {
	if gvk.Group != "tekton.dev" || gvk.Version != "v1" {
		return nil
	}
	switch gvk.Kind {
	case "Task":
		return &v1.Task{}
	case "Pipeline":
		return &v1.Pipeline{}
	case "TaskRun":
		return &v1.TaskRun{}
	case "PipelineRun":
		return &v1.PipelineRun{}
	}
	return nil
}

func pipelineVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == pipelineModule {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func documents(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
}

func check(ctx context.Context, file string, index int, doc []byte) result {
	res := result{File: file, Document: index}
	raw, err := yaml.YAMLToJSON(doc)
	if err != nil {
		res.Status, res.Errors = "error", []string{err.Error()}
		return res
	}
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		res.Status = "empty"
		return res
	}
	var meta typeMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		res.Status, res.Errors = "error", []string{err.Error()}
		return res
	}
	res.APIVersion, res.Kind = meta.APIVersion, meta.Kind
	res.Name = meta.Metadata.Name
	if res.Name == "" {
		res.Name = meta.Metadata.GenerateName
	}
	obj := newObject(schema.FromAPIVersionAndKind(meta.APIVersion, meta.Kind))
	if obj == nil {
		res.Status = "skipped"
		return res
	}
	// as the webhook decodes: an unknown field is an error, not silently dropped
	decoder := json.NewDecoder(bytes.NewReader(raw))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(obj); err != nil {
		res.Status, res.Errors = "invalid", []string{err.Error()}
		return res
	}
	// the API server turns generateName into a name before the validating webhook sees it
	if named, ok := obj.(metav1.Object); ok && named.GetName() == "" && named.GetGenerateName() != "" {
		named.SetName(named.GetGenerateName() + utilrand.String(5))
	}
	obj.SetDefaults(ctx)
	if ferr := obj.Validate(ctx); ferr != nil {
		res.Status = "invalid"
		for _, line := range strings.Split(ferr.Error(), "\n") {
			if strings.TrimSpace(line) != "" {
				res.Errors = append(res.Errors, line)
			}
		}
		return res
	}
	res.Status = "valid"
	return res
}

func main() {
	args := os.Args[1:]
	if len(args) == 1 && (args[0] == "--version" || args[0] == "version") {
		fmt.Printf("tekton-validate %s %s\n", pipelineModule, pipelineVersion())
		return
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: tekton-validate FILE...")
		os.Exit(2)
	}
	ctx := apis.WithinCreate(context.Background())
	out := json.NewEncoder(os.Stdout)
	exit := 0
	for _, file := range args {
		docs, err := documents(file)
		if err != nil {
			_ = out.Encode(result{File: file, Status: "error", Errors: []string{err.Error()}})
			exit = 2
			continue
		}
		for index, doc := range docs {
			res := check(ctx, file, index, doc)
			_ = out.Encode(res)
			switch {
			case res.Status == "error":
				exit = 2
			case res.Status == "invalid" && exit == 0:
				exit = 1
			}
		}
	}
	os.Exit(exit)
}
