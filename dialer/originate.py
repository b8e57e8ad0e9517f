"""What one originate of a campaign carries: its attempt id (the ActionID and the
CALLCYCLE_ATTEMPT_ID channel variable), the dial string built from the server's trunk
template and the gate's validated number, and the variables the dialplan reads
(config/asterisk/extensions.conf, [callcycle-dialer]). Pure, no I/O."""

from __future__ import annotations

import re
import uuid

from dialer.config import DialerSettings
from dialer.models import Campaign, Mode
from pbx.actions import OriginateRequest

AGENT_FIRST_CONTEXT = "callcycle-dialer-agent-first"
_AGENT = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")   # a subject that may stand in a dial string


def new_attempt_id(campaign_id: int, lead_id: int) -> str:
    """``d<campaign>-<lead>-<random>``: the ActionID and CALLCYCLE_ATTEMPT_ID of one originate."""
    return f"d{campaign_id}-{lead_id}-{uuid.uuid4().hex[:12]}"


def campaign_of(attempt_id: str) -> int | None:
    """The campaign of an attempt id made by :func:`new_attempt_id` (None for any other id)."""
    head = attempt_id[1:].split("-", 1)[0]
    return int(head) if attempt_id.startswith("d") and head.isdigit() else None


def originate_request(campaign: Campaign, srv: DialerSettings, attempt_id: str, phone: str,
                      contact_id: int) -> OriginateRequest:
    """The Originate of one attempt (the number passed the compliance gate)."""
    s = campaign.settings
    agentless = campaign.mode is Mode.AGENTLESS
    variables = {
        "CALLCYCLE_CAMPAIGN_ID": str(campaign.id),
        "CALLCYCLE_CONTACT_ID": str(contact_id),
        "CALLCYCLE_DIRECTION": "outbound",
        "CALLCYCLE_AMD": "1" if s.amd else "0",
        "CALLCYCLE_AMD_PARAMS": srv.amd_params,
        "CALLCYCLE_ON_MACHINE": s.on_machine,
        "CALLCYCLE_MACHINE_MSG": s.machine_message or "",
        "CALLCYCLE_TARGET": "ivr" if agentless else "queue",
        "CALLCYCLE_QUEUE": s.queue,
        "CALLCYCLE_FLOW": s.flow or "",
        "CALLCYCLE_CONNECT_S": "2",
        "CALLCYCLE_SAFE_HARBOUR_MSG": s.safe_harbour_message or srv.safe_harbour_message,
    }
    for item in srv.originate_variables:
        name, _, value = item.partition("=")
        variables[name.strip()] = value.strip()
    # The dial string is the template with the validated E.164 number and nothing else.
    return OriginateRequest(attempt_id=attempt_id, channel=srv.trunk.format(number=phone),
                            context="callcycle-dialer", exten="s", caller_id=s.caller_id_for(phone),
                            timeout_s=s.ring_timeout(srv), variables={k: v for k, v in variables.items() if v})


def agent_phone(srv: DialerSettings, agent: str | None) -> str | None:
    """The dial string of the agent who chose a preview lead, when agent-first dialing is
    configured and their name is safe in a dial string; else None (the queue takes the call)."""
    if not srv.agent_endpoint or not agent or not _AGENT.match(agent):
        return None
    return srv.agent_endpoint.format(agent=agent)


def agent_first_request(campaign: Campaign, srv: DialerSettings, attempt_id: str, phone: str, contact_id: int,
                        agent: str, agent_channel: str) -> OriginateRequest:
    """The agent's phone first; once answered, the dialplan dials the customer with what
    :func:`originate_request` would have dialed (config/asterisk/extensions.conf)."""
    customer = originate_request(campaign, srv, attempt_id, phone, contact_id)
    variables = {k: v for k, v in customer.variables.items() if not k.startswith(("CALLCYCLE_AMD", "CALLCYCLE_ON_"))}
    variables.update({"CALLCYCLE_AGENT_FIRST": "1", "CALLCYCLE_AGENT_NAME": agent, "CALLCYCLE_DIAL": customer.channel,
                      "CALLCYCLE_RING_S": str(round(customer.timeout_s)), "CALLCYCLE_TARGET": "agent"})
    return OriginateRequest(attempt_id=attempt_id, channel=agent_channel, context=AGENT_FIRST_CONTEXT, exten="s",
                            caller_id=customer.caller_id, timeout_s=srv.agent_ring_s, variables=variables)
