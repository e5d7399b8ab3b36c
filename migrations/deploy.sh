#!/usr/bin/env bash
# AMP deploy migration: run after `anchor deploy`, as `anchor run migrate`
# (Anchor passes the cluster in ANCHOR_PROVIDER_URL), or directly as
# `migrations/deploy.sh [RPC_URL]`.
#
# The programs need no initialisation after deployment: amp-channel has no
# global or config account (every Channel, Vault and Delegation is created by
# its users' own transactions), and an amp-relay is set up by its operator's
# own `init_relay`. So this migration changes nothing on chain; it only checks
# that every program in idl/ is live at the address its committed IDL names
# (executable, owned by a loader) and prints its upgrade authority and last
# deploy slot.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

url="${1:-${ANCHOR_PROVIDER_URL:-}}"
for idl in idl/*.json; do
    name="$(basename "$idl" .json)"
    program_id="$(sed -n 's/^  "address": "\([1-9A-HJ-NP-Za-km-z]*\)",$/\1/p' "$idl")"
    if [ -z "$program_id" ]; then
        echo "deploy migration: no program address in $idl" >&2
        exit 1
    fi
    echo "deploy migration: checking $name $program_id${url:+ on $url}"
    # Fails (non-zero) if the account does not exist or is not a program.
    solana program show "$program_id" ${url:+--url "$url"}
done
echo "deploy migration: nothing to initialise; done"
