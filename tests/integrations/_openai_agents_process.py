"""One process of the restart test: start the refund run, or resume it (not collected: no test_ prefix).

    python _openai_agents_process.py start  <journal url> <run id> <ledger file>
    python _openai_agents_process.py resume <journal url> <run id> <ledger file>

Prints one JSON line saying what happened, and exits: 0 done, 3 still waiting for a human, 4 refused.
Each process builds the agents, the policy and the processor afresh, as a restarted service would.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from _openai_agents_refunds import ASK, Ledger, policy, refund_agents

from agentjournal import Journal
from agentjournal.integrations.openai_agents import AgentsJournal, ApprovalPending
from agentjournal.integrations.recorder import RecorderError
from agents import set_trace_processors


async def main(phase: str, url: str, run_id: str, ledger: Path) -> int:
    with Journal.open(url) as journal:
        journaled = AgentsJournal(journal, policy=policy())
        set_trace_processors([journaled.processor])
        triage = refund_agents(Ledger(ledger))
        try:
            if phase == "start":
                result = await journaled.run(triage, ASK, run_id=run_id, user_id="u-7")
            else:
                result = await journaled.resume(triage, run_id)
        except ApprovalPending as waiting:
            print(json.dumps({"waiting": waiting.approval_ids, "error": str(waiting)}))
            return 3
        except RecorderError as refused:
            print(json.dumps({"error": str(refused)}))
            return 4
        held = [item.call_id for item in result.interruptions]
        print(json.dumps({"held": held, "final": None if held else result.final_output}))
        return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]))))
