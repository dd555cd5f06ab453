package embedded

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/equilateral-agents/equilateral/security"
)

// What nats-server keeps on disk (server/filestore.go): the store dir has
// a "jetstream" directory, one directory per account, its streams under
// "streams"; an encrypted stream has a "meta.key" next to its "meta.inf".
const (
	jsStoreSubdir = "jetstream"
	streamsSubdir = "streams"
	metaFile      = "meta.inf"
	metaKeyFile   = "meta.key"
)

// ObserveEncryption observes encryption at rest of this in-process server
// (security.EncryptionAtRest): On when the options it runs with set a
// JetStream key (from its config's jetstream { cipher, key }, or a TPM)
// and every stream in its store dir has its encryption key file, i.e. none
// is still plaintext on disk. This is the strongest observation there is:
// the running server's own settings and the files it wrote.
func (s *Server) ObserveEncryption() security.Observation {
	if s.opts == nil {
		return security.Observation{Detail: "the in-process server's options are unknown"}
	}
	return observe("the in-process server", s.opts)
}

// ObserveConfigs observes encryption at rest from nats-server config files
// on this host (a data dir's server.conf, or every node's config of a
// cluster run on this machine), read with nats-server's own parser: On
// when each sets a JetStream key and each store dir holds no plaintext
// stream. It sees what a server started from the file would do, not
// whether the running server was started from it since the file changed
// (a server started before the key was added writes plaintext streams,
// which the store scan then finds).
func ObserveConfigs(files ...string) security.Observation {
	if len(files) == 0 {
		return security.Observation{Detail: "no nats-server config to read"}
	}
	var details []string
	for _, f := range files {
		opts, err := server.ProcessConfigFile(f)
		if err != nil {
			return security.Observation{Detail: fmt.Sprintf("cannot read the nats-server config %s: %v", f, err)}
		}
		o := observe(f, opts)
		if !o.On {
			return o
		}
		details = append(details, o.Detail)
	}
	return security.Observation{On: true, Detail: strings.Join(details, "; ")}
}

// observe judges one server's options and its store dir.
func observe(who string, opts *server.Options) security.Observation {
	switch {
	case !opts.JetStream:
		return security.Observation{Detail: who + " does not run JetStream"}
	case opts.JetStreamKey == "" && opts.JetStreamTpm.KeysFile == "":
		return security.Observation{Detail: who + " has no JetStream encryption key (jetstream { cipher, key } not set): its store is plaintext on disk"}
	}
	root := filepath.Join(opts.StoreDir, jsStoreSubdir)
	plain, n, err := plaintextStreams(root)
	if err != nil {
		return security.Observation{Detail: fmt.Sprintf("%s sets a JetStream key, but its store %s could not be read: %v", who, root, err)}
	}
	if len(plain) > 0 {
		return security.Observation{Detail: fmt.Sprintf("%s sets a JetStream key, but %d stream(s) in %s are plaintext on disk (written before the key was set; a restart with the key encrypts them): %s",
			who, len(plain), root, strings.Join(plain, ", "))}
	}
	return security.Observation{On: true, Detail: fmt.Sprintf("%s encrypts JetStream with %s; its %d stream(s) in %s each have an encryption key file",
		who, opts.JetStreamCipher, n, root)}
}

// plaintextStreams walks a JetStream store (root/<account>/streams/<stream>)
// and lists the streams without an encryption key file, as
// "<account> > <stream>"; n counts the streams seen. A store not written
// yet has none.
func plaintextStreams(root string) (plain []string, n int, err error) {
	accounts, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	for _, acc := range accounts {
		if !acc.IsDir() {
			continue
		}
		sdir := filepath.Join(root, acc.Name(), streamsSubdir)
		streams, err := os.ReadDir(sdir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		for _, st := range streams {
			// A "." prefix marks a stream being deleted.
			if !st.IsDir() || strings.HasPrefix(st.Name(), ".") {
				continue
			}
			if _, err := os.Stat(filepath.Join(sdir, st.Name(), metaFile)); err != nil {
				continue // not written yet
			}
			n++
			if _, err := os.Stat(filepath.Join(sdir, st.Name(), metaKeyFile)); err != nil {
				plain = append(plain, acc.Name()+" > "+st.Name())
			}
		}
	}
	return plain, n, nil
}
