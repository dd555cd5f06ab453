package natstest

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// PlaintextConnect speaks the NATS protocol by hand, without TLS: it reads
// INFO, answers with CONNECT as the principal of creds (its JWT and the
// nonce signed with its seed) and PING, and reports whether the server
// answered PONG. It returns an error if no NATS server is there at all.
func PlaintextConnect(url, creds string) (info string, pong bool, err error) {
	raw, err := os.ReadFile(creds)
	if err != nil {
		return "", false, err
	}
	userJWT, err := jwt.ParseDecoratedJWT(raw)
	if err != nil {
		return "", false, err
	}
	kp, err := nkeys.ParseDecoratedNKey(raw)
	if err != nil {
		return "", false, err
	}
	_, hostPort, _ := strings.Cut(url, "://")
	conn, err := net.DialTimeout("tcp", hostPort, 5*time.Second)
	if err != nil {
		return "", false, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	info, err = r.ReadString('\n')
	if err != nil || !strings.HasPrefix(info, "INFO ") {
		return info, false, fmt.Errorf("no INFO from %s: %v", hostPort, err)
	}
	var serverInfo struct {
		Nonce string `json:"nonce"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(info), "INFO ")), &serverInfo); err != nil {
		return info, false, err
	}
	sig, err := kp.Sign([]byte(serverInfo.Nonce))
	if err != nil {
		return info, false, err
	}
	connect, _ := json.Marshal(map[string]any{"jwt": userJWT, "sig": base64.RawURLEncoding.EncodeToString(sig),
		"verbose": false, "pedantic": false, "protocol": 1, "headers": true})
	if _, err := fmt.Fprintf(conn, "CONNECT %s\r\nPING\r\n", connect); err != nil {
		return info, false, nil // the server hung up: no PONG
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return info, false, nil
		}
		if strings.HasPrefix(line, "PONG") {
			return info, true, nil
		}
	}
}
