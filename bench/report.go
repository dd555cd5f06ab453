package bench

// Report is what one run measured. A part that did not run is nil, and
// Skipped says why; a number that could not be measured is nil (JSON
// null), and the level's Notes say why.
type Report struct {
	Raw      *RawResult        `json:"raw"`
	Baseline *BaselineResult   `json:"baseline"`
	Crypto   *CryptoResult     `json:"crypto"`
	Levels   []LevelResult     `json:"levels"`
	Skipped  map[string]string `json:"skipped,omitempty"`
	Settings Settings          `json:"settings"`
}

// Settings are what the run was asked to do, and where.
type Settings struct {
	DurationSec  float64 `json:"duration_s"`
	WarmupSec    float64 `json:"warmup_s"`
	Concurrency  int     `json:"concurrency"`
	PayloadBytes int     `json:"payload_bytes"`
	// Agents run by the bench (0: a remote tenant's own agents served).
	Agents     int `json:"agents"`
	GOMAXPROCS int `json:"gomaxprocs"`
	// Server is "embedded" or the remote URL.
	Server string `json:"server"`
	// Tracing says where the spans went.
	Tracing string `json:"tracing"`
}

// RawResult is plain NATS request-reply.
type RawResult struct {
	RequestsPerSec  float64 `json:"requests_per_sec"`
	P50ms           float64 `json:"p50_ms"`
	P90ms           float64 `json:"p90_ms"`
	P99ms           float64 `json:"p99_ms"`
	CPUusPerRequest float64 `json:"cpu_us_per_request"`
	Requests        int     `json:"requests"`
	Deployment      string  `json:"deployment"`
}

// BaselineResult is the hand-built durable JetStream pipeline.
type BaselineResult struct {
	TasksPerSec            float64 `json:"tasks_per_sec"`
	P50ms                  float64 `json:"p50_ms"`
	P90ms                  float64 `json:"p90_ms"`
	P99ms                  float64 `json:"p99_ms"`
	CPUusPerTask           float64 `json:"cpu_us_per_task"`
	JetStreamWritesPerTask float64 `json:"jetstream_writes_per_task"`
	Tasks                  int     `json:"tasks"`
	Handlers               int     `json:"handlers"`
	Deployment             string  `json:"deployment"`
}

// CryptoResult is the cost of one signature and one verification.
type CryptoResult struct {
	SignUs   float64 `json:"sign_us"`
	VerifyUs float64 `json:"verify_us"`
}

// LevelResult is the task round trip at one security level.
type LevelResult struct {
	Level       string  `json:"level"`
	Environment string  `json:"environment"`
	Deployment  string  `json:"deployment"`
	Tasks       int     `json:"tasks"`
	TasksPerSec float64 `json:"tasks_per_sec"`
	P50ms       float64 `json:"p50_ms"`
	P90ms       float64 `json:"p90_ms"`
	P99ms       float64 `json:"p99_ms"`

	CPUusPerTask           *float64 `json:"cpu_us_per_task"`
	SignaturesPerTask      *float64 `json:"signatures_per_task"`
	VerificationsPerTask   *float64 `json:"verifications_per_task"`
	JetStreamWritesPerTask *float64 `json:"jetstream_writes_per_task"`
	ServerMsgsInPerTask    *float64 `json:"server_msgs_in_per_task"`
	ServerMsgsOutPerTask   *float64 `json:"server_msgs_out_per_task"`
	SpansPerTask           *float64 `json:"spans_per_task"`
	// FloorTasksPerSec is what the signature work alone allows:
	// GOMAXPROCS × 1e6 / (signatures × sign_us + verifications × verify_us).
	FloorTasksPerSec *float64 `json:"floor_tasks_per_sec"`

	RatioToRawP50   *float64 `json:"ratio_to_raw_p50"`
	RatioToBaseline *float64 `json:"ratio_to_baseline"`
	RatioToFloor    *float64 `json:"ratio_to_floor"`

	CPUProfile string   `json:"cpu_profile,omitempty"`
	Notes      []string `json:"notes,omitempty"`
}

// ratios fills the ratios and the floor from the other parts' results
// (any of which may be nil).
func (l *LevelResult) ratios(raw *RawResult, base *BaselineResult, crypto *CryptoResult, procs int) {
	if raw != nil && raw.P50ms > 0 {
		l.RatioToRawP50 = ptr(l.P50ms / raw.P50ms)
	}
	if base != nil && base.TasksPerSec > 0 {
		l.RatioToBaseline = ptr(l.TasksPerSec / base.TasksPerSec)
	}
	if crypto == nil || l.SignaturesPerTask == nil || l.VerificationsPerTask == nil {
		return
	}
	perTask := *l.SignaturesPerTask*crypto.SignUs + *l.VerificationsPerTask*crypto.VerifyUs
	if perTask <= 0 {
		return
	}
	l.FloorTasksPerSec = ptr(float64(procs) * 1e6 / perTask)
	l.RatioToFloor = ptr(l.TasksPerSec / *l.FloorTasksPerSec)
}

func ptr(f float64) *float64 { return &f }
