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

// rel is the path of a stored file relative to the store's folder, as
// errors name it.
func (s *store) rel(elem ...string) string {
	return filepath.ToSlash(filepath.Join(elem...))
}

// putBlob stores a module under its digest. A blob already there is kept
// when intact and rewritten when its bytes were lost or altered.
func (s *store) putBlob(name, digest string, wasm []byte) error {
	if err := os.MkdirAll(filepath.Join(s.dir, name), 0o755); err != nil {
		return err
	}
	p := s.blobPath(name, digest)
	if _, err := readBlob(p, digest); err == nil {
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

// manifests reads every stored transform's manifest. A folder whose
// manifest cannot be read or does not describe it is returned in bad, with
// why; err is for a store that cannot be listed at all.
func (s *store) manifests() (mans []manifest, bad map[string]error, err error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("wasmhost: read %s: %w", s.dir, err)
	}
	bad = map[string]error{}
	for _, e := range ents {
		if !e.IsDir() || checkName("transform", e.Name()) != nil {
			continue
		}
		rel := s.rel(e.Name(), "manifest.json")
		b, err := os.ReadFile(filepath.Join(s.dir, e.Name(), "manifest.json"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			bad[e.Name()] = fmt.Errorf("its manifest %s cannot be read: %w", rel, err)
			continue
		}
		var m manifest
		if err := json.Unmarshal(b, &m); err != nil {
			bad[e.Name()] = fmt.Errorf("its manifest %s is damaged: %w", rel, err)
			continue
		}
		if m.Name != e.Name() {
			bad[e.Name()] = fmt.Errorf("its manifest %s names transform %q", rel, m.Name)
			continue
		}
		mans = append(mans, m)
	}
	return mans, bad, nil
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
	rel := filepath.ToSlash(filepath.Join(filepath.Base(filepath.Dir(path)), filepath.Base(path)))
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("its module %s is missing", rel)
	}
	if err != nil {
		return nil, fmt.Errorf("its module %s cannot be read: %w", rel, err)
	}
	if d := digestOf(b); d != digest {
		return nil, fmt.Errorf("its module %s is altered or truncated (%d bytes, SHA-256 %.12s…; the manifest says %.12s…)", rel, len(b), d, digest)
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
