package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/equilateral-agents/equilateral/protocol"
	"github.com/equilateral-agents/equilateral/security"
)

// Encryption at rest (security.EncryptionAtRest). Every nats-server config
// Init writes (DIR/server.conf and DIR/nats/nats<K>.conf) sets
//
//	server_tags: ["eq-encrypted"]
//	jetstream: { cipher: chachapoly, key: "<32 random bytes, base64url>" }
//
// so the server encrypts every stream, KV bucket, consumer and (clustered)
// raft log it writes. The key lives only in those 0600 files: one key for
// server.conf, one shared by the cluster's nodes (each encrypts its own
// store with it).
//
// nats-server does not tell clients its cipher (not in INFO, not in
// $JS.API.INFO). What a client can see is placement: a stream placed with
// the tag EncryptedTag lands only on servers whose config carries it.

// EncryptedTag is the server tag every config Init writes carries, always
// together with a JetStream cipher and key. The tag is a statement of the
// config, not a measurement: a hand-written config could carry it without
// a key (docs/cluster.md says to add both lines or neither).
const EncryptedTag = "eq-encrypted"

// StoreCipher is the JetStream cipher of the configs Init writes.
const StoreCipher = "chachapoly"

// storeKeyBytes is the JetStream key's length before encoding. The server
// derives its key-encryption keys from the whole string (HMAC-SHA256).
const storeKeyBytes = 32

// newStoreKey makes a JetStream encryption key: 32 random bytes, base64url
// (43 characters, nothing the config parser would read as a variable).
func newStoreKey() string {
	b := make([]byte, storeKeyBytes)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// EncryptedPlacement is the placement that keeps every replica of a stream
// on servers tagged EncryptedTag. In a cluster, a stream created with it
// cannot be placed (the server refuses it) unless enough such servers are
// up. A single, unclustered server ignores placement tags.
func EncryptedPlacement() *jetstream.Placement {
	return &jetstream.Placement{Tags: []string{EncryptedTag}}
}

// ServerConfigFiles lists the nats-server configs Init wrote into the data
// dir: server.conf, then every cluster node's (nats/nats<K>.conf).
func (d *Directory) ServerConfigFiles() []string {
	files := []string{d.layout.serverConfig()}
	for k := 1; ; k++ {
		if _, err := os.Stat(d.layout.nodeConfig(k)); err != nil {
			return files
		}
		files = append(files, d.layout.nodeConfig(k))
	}
}

// maxReplicas is nats-server's largest replica count.
const maxReplicas = 5

// probeMaxBytes bounds a probe stream (it never holds a message).
const probeMaxBytes = 1024

// ObserveEncryption observes encryption at rest from a client connection
// of any account with JetStream (an orchestrator's own) to a JetStream
// cluster whose streams have `replicas` replicas.
//
// It creates short-lived, empty probe streams (EQ_ENCRYPTION_PROBE_*,
// deleted at once): without placement, with as many replicas as the
// cluster will place (up to 5), which counts its servers; then placed with
// EncryptedTag, which counts the servers carrying the tag and names them.
// On means:
//   - as many servers carry EncryptedTag as the cluster has (counted up to
//     5), and at least `replicas`;
//   - every replica of every stream and KV bucket the account already has
//     is on such a server (its placement requires the tag, or its server
//     was seen carrying it).
//
// What it proves is that the servers' configs say they encrypt: the tag is
// written only together with cipher and key. It cannot see the bytes on
// disk, nor a hand-written config with the tag and no key, nor untagged
// servers beyond the fifth of a larger cluster (streams placed with
// EncryptedPlacement are safe from those). It says Off, with the reason,
// for a single unclustered server (placement tags are not checked there:
// observe it in process with embedded.Server's ObserveEncryption or from
// its config with embedded.ObserveConfigs), when too few servers carry the
// tag, when a stream has a replica elsewhere, and when JetStream does not
// answer or refuses the probe (an account at its stream limit, a user
// without $JS.API.STREAM.CREATE).
func ObserveEncryption(ctx context.Context, js jetstream.JetStream, replicas int) security.Observation {
	replicas = max(replicas, 1)
	off := func(format string, args ...any) security.Observation {
		return security.Observation{Detail: fmt.Sprintf(format, args...)}
	}
	const single = "JetStream is a single server, not a cluster: it accepts any placement tags without checking them, so its cipher cannot be seen over a client connection (observe it in process or from its config file)"
	if _, err := js.AccountInfo(ctx); err != nil {
		return off("JetStream did not answer (%v), so the encryption of its store could not be checked", err)
	}
	all, err := probePlacement(ctx, js, maxReplicas, 1, nil)
	if err != nil {
		return off("could not create a probe stream (%v), so the encryption of the store could not be checked", err)
	}
	if all.Cluster == nil || all.Cluster.Name == "" {
		return off("%s", single)
	}
	total := len(replicaServers(all.Cluster))
	if total < replicas {
		return off("the cluster %s places streams on at most %d servers now, fewer than the %d replicas asked for, so where they would be stored could not be checked", all.Cluster.Name, total, replicas)
	}
	placed, err := probePlacement(ctx, js, total, replicas, EncryptedPlacement())
	switch {
	case isPlacementRefusal(err):
		return off("fewer than %d of the cluster's %d JetStream servers carry the tag %s (a stream of %d replicas placed with it was refused: %v): their configs do not set a JetStream cipher and key the way `equilateral init` writes them",
			replicas, total, EncryptedTag, replicas, err)
	case err != nil:
		return off("could not create a probe stream placed with the tag %s (%v), so the encryption of the store could not be checked", EncryptedTag, err)
	}
	tagged := replicaServers(placed.Cluster)
	slices.Sort(tagged)
	if len(tagged) < total {
		return off("only %d of the cluster's %d JetStream servers carry the tag %s (%s): the others' configs do not set a JetStream cipher and key the way `equilateral init` writes them",
			len(tagged), total, EncryptedTag, strings.Join(tagged, ", "))
	}

	// Every stream the account already has (KV buckets are streams).
	var streams, elsewhere []string
	lister := js.ListStreams(ctx)
	for si := range lister.Info() {
		if strings.HasPrefix(si.Config.Name, probePrefix) {
			continue
		}
		streams = append(streams, si.Config.Name)
		if si.Config.Placement != nil && slices.ContainsFunc(si.Config.Placement.Tags, func(t string) bool {
			return strings.EqualFold(strings.TrimSpace(t), EncryptedTag)
		}) {
			continue
		}
		for _, s := range replicaServers(si.Cluster) {
			if !slices.Contains(tagged, s) {
				elsewhere = append(elsewhere, fmt.Sprintf("%s on %s", si.Config.Name, s))
			}
		}
	}
	if err := lister.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return off("could not list the account's streams (%v), so their placement could not be checked", err)
	}
	if len(elsewhere) > 0 {
		return off("stream replicas on servers not seen carrying the tag %s: %s (create streams with placement tag %s, or tag and encrypt every server)",
			EncryptedTag, strings.Join(elsewhere, ", "), EncryptedTag)
	}
	return security.Observation{On: true, Detail: fmt.Sprintf(
		"cluster %s: all %d servers seen (%s) carry the tag %s, which equilateral's configs set only with a JetStream cipher and key, and every replica of this account's %d stream(s) is on them (the servers' configs say so; the bytes on disk were not read)",
		all.Cluster.Name, total, strings.Join(tagged, ", "), EncryptedTag, len(streams))}
}

const probePrefix = "EQ_ENCRYPTION_PROBE_"

// probePlacement creates an empty probe stream with the most replicas,
// from most down to least, that the cluster will place with placement,
// reads where it landed and deletes it. It returns the last refusal when
// none could be placed.
func probePlacement(ctx context.Context, js jetstream.JetStream, most, least int, placement *jetstream.Placement) (*jetstream.StreamInfo, error) {
	name := probePrefix + strings.ToUpper(randomHex(8))
	lastErr := fmt.Errorf("auth: no replica count from %d down to %d", most, least)
	for r := most; r >= least; r-- {
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        name,
			Description: "equilateral: where can a stream be placed? (deleted at once)",
			Subjects:    []string{protocol.EncryptionProbe(strings.ToLower(name))},
			Storage:     jetstream.FileStorage,
			Replicas:    r,
			MaxMsgs:     1,
			MaxBytes:    probeMaxBytes,
			Discard:     jetstream.DiscardNew,
			Placement:   placement,
		})
		if err != nil {
			lastErr = err
			if ctx.Err() != nil || !(isPlacementRefusal(err) || isSingleServer(err)) {
				return nil, err
			}
			continue
		}
		info := s.CachedInfo()
		delCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		js.DeleteStream(delCtx, name)
		cancel()
		return info, nil
	}
	return nil, lastErr
}

// replicaServers names the servers holding a stream's replicas: its leader
// and its followers.
func replicaServers(c *jetstream.ClusterInfo) []string {
	if c == nil {
		return nil
	}
	var names []string
	if c.Leader != "" {
		names = append(names, c.Leader)
	}
	for _, p := range c.Replicas {
		if p != nil && p.Name != "" && !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	return names
}

// nats-server's JetStream error codes (server/errors.json) the probe reads.
const (
	jsErrNoPeers               jetstream.ErrorCode = 10005 // no suitable peers for placement
	jsErrInsufficientResources jetstream.ErrorCode = 10023
	jsErrReplicasNotSupported  jetstream.ErrorCode = 10074 // replicas > 1 not supported in non-clustered mode
)

// isSingleServer reports whether err is a single server refusing replicas.
func isSingleServer(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrReplicasNotSupported
}

// isPlacementRefusal reports whether err is JetStream refusing a stream it
// cannot place (too few servers, or none with the tags).
func isPlacementRefusal(err error) bool {
	var apiErr *jetstream.APIError
	if err == nil || !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jsErrNoPeers, jsErrInsufficientResources:
		return true
	}
	return strings.Contains(apiErr.Description, "placement") || strings.Contains(apiErr.Description, "peers")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
