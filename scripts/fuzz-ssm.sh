#!/usr/bin/env bash
# Bounded fuzzing of the decoders that read the network (AgentMessage, smux frames, the SSM
# client engine): `scripts/fuzz-ssm.sh [SECONDS]` (default 60). Reports executions and
# crashes; crashing inputs land in target/fuzz-crashes/. Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export HOP_FUZZ_SECS="${1:-60}"
exec cargo test --release --bin hop -- --ignored --exact domain::ssm::fuzz::fuzz_decoders --nocapture
