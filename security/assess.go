package security

import "fmt"

// Usage is what a system's live metrics say about how it is used.
type Usage struct {
	// ActivePrincipals are agents and clients seen in the last 30 days.
	ActivePrincipals int `json:"active_principals"`
	// Executions are tasks created in the last 30 days.
	Executions int `json:"executions"`
	// Tenants are the tenants served.
	Tenants int `json:"tenants"`
	// CodeGenerating are capabilities the policy marks generates_code.
	CodeGenerating int `json:"code_generating_capabilities"`
	// Shares are capabilities shared across tenants.
	Shares int `json:"shares"`
}

// Trigger is one threshold a system's usage crossed.
type Trigger struct {
	Level     Level  `json:"level"`
	Metric    string `json:"metric"`
	Value     int    `json:"value"`
	Threshold int    `json:"threshold"`
}

func (t Trigger) String() string {
	return fmt.Sprintf("%s: %s %d >= %d", t.Level, t.Metric, t.Value, t.Threshold)
}

// threshold: level's trigger on metric at or above min.
type threshold struct {
	level  Level
	metric string
	min    int
	value  func(Usage) int
}

// thresholds are the seed's, translated (PRODUCT.md): any one fires its level.
var thresholds = []threshold{
	{Enhanced, "active_principals", 10, func(u Usage) int { return u.ActivePrincipals }},
	{Enhanced, "executions", 100, func(u Usage) int { return u.Executions }},
	{Enhanced, "code_generating_capabilities", 1, func(u Usage) int { return u.CodeGenerating }},
	{Enhanced, "shares", 1, func(u Usage) int { return u.Shares }},
	{Advanced, "active_principals", 25, func(u Usage) int { return u.ActivePrincipals }},
	{Advanced, "executions", 1000, func(u Usage) int { return u.Executions }},
	{Advanced, "tenants", 2, func(u Usage) int { return u.Tenants }},
	{Enterprise, "active_principals", 100, func(u Usage) int { return u.ActivePrincipals }},
	{Enterprise, "executions", 10000, func(u Usage) int { return u.Executions }},
}

// Assess is the level usage calls for (foundation when nothing fired) and
// every threshold it crossed, lowest level first.
func Assess(u Usage) (Level, []Trigger) {
	level := Foundation
	var fired []Trigger
	for _, t := range thresholds {
		if v := t.value(u); v >= t.min {
			fired = append(fired, Trigger{Level: t.level, Metric: t.metric, Value: v, Threshold: t.min})
			level = max(level, t.level)
		}
	}
	return level, fired
}
