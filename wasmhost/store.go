package wasmhost

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// On disk, under <DataDir>/transforms:
//
//	<name>/manifest.json      versions, current version
//	<name>/<sha256>.wasm      one blob per distinct content
//	../pipelines.json         pipeline name → transform names
//
// Every file is written to a temporary name, synced and renamed, so a crash
// leaves either the old or the new file.

// versionMeta is one version's stored description.
type versionMeta struct {
	Version    int       `json:"version"`
	Digest     string    `json:"digest"`
	Size       int       `json:"size"`
	ABIVersion int       `json:"abi_version"`
	Exports    []string  `json:"exports"`
	Created    time.Time `json:"created"`
}

type manifest struct {
	Name     string        `json:"name"`
	Current  int           `json:"current"`
	Versions []versionMeta `json:"versions"`
}

type store struct {
	dir string // <DataDir>/transforms
}

func openStore(dataDir string) (*store, error) {
	dir := filepath.Join(dataDir, "transforms")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wasmhost: data dir: %w", err)
	}
	return &store{dir: dir}, nil
}

func (s *store) blobPath(name, digest string) string {
	return filepath.Join(s.dir, name, digest+".wasm")
}

func (s *store) putBlob(name, digest string, wasm []byte) error {
	if err := os.MkdirAll(filepath.Join(s.dir, name), 0o755); err != nil {
		return err
	}
	p := s.blobPath(name, digest)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	return writeAtomic(p, wasm)
}

func (s *store) putManifest(m manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.dir, m.Name, "manifest.json"), b)
}

func (s *store) remove(name string) error {
	return os.RemoveAll(filepath.Join(s.dir, name))
}

func (s *store) removeBlob(name, digest string) error {
	err := os.Remove(s.blobPath(name, digest))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (s *store) manifests() ([]manifest, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("wasmhost: read %s: %w", s.dir, err)
	}
	var out []manifest
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name(), "manifest.json"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("wasmhost: read manifest: %w", err)
		}
		var m manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("wasmhost: manifest of %q: %w", e.Name(), err)
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *store) pipelinesPath() string { return filepath.Join(s.dir, "..", "pipelines.json") }

func (s *store) pipelines() (map[string][]string, error) {
	b, err := os.ReadFile(s.pipelinesPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m map[string][]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("wasmhost: pipelines.json: %w", err)
	}
	return m, nil
}

func (s *store) putPipelines(m map[string][]string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(s.pipelinesPath(), b)
}

// readBlob reads a stored module and checks its digest.
func readBlob(path, digest string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wasmhost: read %s: %w", path, err)
	}
	if d := digestOf(b); d != digest {
		return nil, fmt.Errorf("wasmhost: %s: digest %s, manifest says %s", path, d, digest)
	}
	return b, nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
