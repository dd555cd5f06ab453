#!/bin/sh
# Reads the task from stdin, reports on stderr, prints the result on stdout.
task=$(cat)
echo "got task $EQ_TASK_ID (attempt $EQ_ATTEMPT)" >&2
echo 'partial {"step":1}' >&2
printf '{"input_bytes":%d}\n' "$(printf '%s' "$task" | wc -c)"
