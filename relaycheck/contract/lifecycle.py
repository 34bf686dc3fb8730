"""The lifecycle probe: the task and node operations that only answer 2xx in the right state.

Fuzzing sends each operation on its own, so a task-state operation (score, validate, results, ...)
only ever meets a task that does not exist, and the coverage table shows no accepted request. This
probe walks the flows a node and a task creator go through, with the gate's own signer in both
roles, and judges every answer like the other probes. The walk acts as a fresh account of its own
(the *actor*), funded by the gate's signer with a transfer, so the signer's own state (not joined,
its funds) is left as the bounds and signature probes expect it:

0. the signer transfers the actor its stake and fees;
1. the actor joins as a node with a GPU name no other node has, and updates its version. Where the
   document's v2 join names a ``network`` (24ffc26), it joins through v2 with a network and stake
   the Relay publishes (``Lifecycle.join_candidates`` says which) and then sends its complete
   capabilities (``POST /v2/node/{address}/capabilities``);
2. task A, an SD fine-tune (LoRA) task requiring that GPU, is created with an input checkpoint, so
   the Relay can only dispatch it to the actor's node; the node downloads the checkpoint, submits
   a score, the creator validates it (VRF proof over the sampling seed), the node uploads the
   result image and checkpoint, the creator downloads both (where served, the creator first reads
   the task's selected node);
3. task B, an LLM task for the same node: the node reports a task error (where served, a v2
   diagnostic first, ``POST /v2/tasks/{task_id_commitment}/node_error``);
4. task C requires a GPU nobody has, so it stays queued: the creator aborts it (reason 7,
   CreatorCancelled, where the document is of the 24ffc26 line, which takes no other). A Relay
   without the transfer route (24ffc26) cannot fund the actor: unless the target funded it at start
   (the embedded fixture relay does), the signer creates, reads and aborts task C itself, and the
   node flows are left out;
5. the node pauses, resumes and quits (the signer leaves no joined node behind for the other probes,
   whose own join controls need it);
6. a worker version of this run only: leaving before joining is refused (400 naming ``version``),
   joining and leaving are accepted;
7. with an admin key (the Relay's own account), ``GET /v2/incentive/nodes/all``.

Setup that depends on the target's configuration rather than its contract (the signer's funds for
the transfer, the task schema a real Relay validates ``task_args`` against, the dispatch)
is a *note* when refused, never a finding and never a faked 2xx: against a real Relay, fund the
``RELAYCHECK_KEY`` account with at least ``ACTOR_FUNDS`` and give ``RELAYCHECK_ADMIN_KEY`` for the admin read.
Once the setup is accepted, every later step is valid in the state the Relay itself reported,
so refusing it is a finding (``lifecycle_accepted``).
"""

from __future__ import annotations

import io
import json
import secrets
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from relaycheck import bounded
from relaycheck.contract import answer_checks, relay_checks
from relaycheck.contract.answer_checks import validation_refused
from relaycheck.contract.findings import BUILTIN_RULES, Finding, RecordedExchange, RecordedRequest, b64
from relaycheck.contract.probes import declared_refusals
from relaycheck.contract.signing_auth import SignedOperation, sign_parts, signed_operations
from relaycheck.signing import Signer

TABLE = "lifecycle"
RULE = "a request valid in the state the Relay reported MUST be accepted (2xx)"
REJECT_RULE = ("a request invalid in the state the Relay reported MUST be rejected as the document declares "
               "(else with 400 naming the field)")
SD_MODEL = "crynux-ai/sdxl-turbo"
LLM_MODEL = "Qwen/Qwen2.5-7B-Instruct"
#: Task types (models.TaskType): SD, LLM, SD fine-tune (LoRA).
TASK_LLM, TASK_LORA = 1, 2
#: Task status codes the steps wait for (models.TaskStatus).
STARTED, SCORE_READY = 1, 4
#: Small fee (wei): the creator pays it, the node (the same account) earns it back.
TASK_FEE = 10**15
#: What the signer hands the actor: a node stake (400 CNX on the public network) with room to spare.
ACTOR_FUNDS = 500 * 10**18
TRANSFER = "POST /v1/balance/{from}/transfer"
#: Operations this probe sends (what it adds to the coverage table).
OPERATIONS = (
    "POST /v1/balance/{from}/transfer",
    "POST /v1/node/{address}/join",
    "POST /v1/node/{address}/version",
    "POST /v1/inference_tasks/{task_id_commitment}",
    "GET /v1/inference_tasks/{task_id_commitment}",
    "GET /v1/inference_tasks/{task_id_commitment}/checkpoint",
    "POST /v1/inference_tasks/{task_id_commitment}/score",
    "POST /v1/inference_tasks/validate",
    "POST /v1/inference_tasks/{task_id_commitment}/results",
    "GET /v1/inference_tasks/{task_id_commitment}/results/{index}",
    "GET /v1/inference_tasks/{task_id_commitment}/results/checkpoint",
    "POST /v1/inference_tasks/{task_id_commitment}/task_error",
    "POST /v1/inference_tasks/{task_id_commitment}/abort_reason",
    "POST /v1/node/{address}/pause",
    "POST /v1/node/{address}/resume",
    "POST /v1/node/{address}/quit",
    "POST /v1/worker/{version}",
    "DELETE /v1/worker/{version}",
    "GET /v2/incentive/nodes/all",
)
JOIN_V2 = "POST /v2/node/{address}/join"
#: Operations the walk adds where the document has them (the 24ffc26 line): the node joins through v2
#: and synchronises its capabilities, the creator reads the selected node, the node reports a diagnostic.
OPERATIONS_V2 = (
    JOIN_V2,
    "POST /v2/node/{address}/capabilities",
    "GET /v1/inference_tasks/{task_id_commitment}/selected_node",
    "POST /v2/tasks/{task_id_commitment}/node_error",
)
#: A node's stake on the public network (the Relay's default ``stake_amount``, 400 CNX).
NODE_STAKE = 400 * 10**18
#: Keys under which the Relay's answers carry a network name and a node operator's own stake.
NETWORK_KEY = "network"
STAKE_KEYS = ("operator_staking", "operator_stake_amount")
#: Candidates of each kind a v2 join tries, and joins at most, before the walk gives up with a note.
JOIN_CANDIDATES, MAX_JOINS = 3, 6


class _Stop(Exception):
    """The flow cannot go on; ``note`` says why (setup refused) or is empty (a finding says it)."""

    def __init__(self, note: str = "") -> None:
        super().__init__(note)
        self.note = note


class _Redraw(_Stop):
    """The Relay drew the actor's task for group validation (one in a hundred): start over with a
    fresh actor, since the drawn task keeps the node busy and a single validation cannot free it."""


#: Fresh actors to try before giving up on the draw (each fails with probability 1/100).
ATTEMPTS = 3


@dataclass
class LifecycleResult:
    findings: list[Finding] = field(default_factory=list)
    statuses: dict[str, list[int | None]] = field(default_factory=dict)
    #: Why a flow stopped early without a finding (setup the target refused).
    notes: list[str] = field(default_factory=list)


@dataclass
class _Task:
    commitment: str
    task_id: bytes
    nonce: bytes


class Lifecycle:
    """One walk through the flows; each step records its exchange and judges it."""

    def __init__(
        self,
        client: httpx.Client,
        base_url: str,
        document: Mapping[str, Any],
        signer: Signer,
        rules: relay_checks.RuleContext | None,
        *,
        seed: int | None,
        operations: set[str],
        result: LifecycleResult | None = None,
        funded_key: bytes | None = None,
    ) -> None:
        # The actor's raw key stays in this object: the creator's VRF proof needs it in-process.
        self._actor_key = funded_key or secrets.token_bytes(32)
        #: The target funded the actor already (a fixture relay started with its address funded).
        self.prefunded = funded_key is not None
        self.actor = Signer(self._actor_key)
        self.payer = signer
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.specs: dict[str, SignedOperation] = signed_operations(document)
        self.labels = {
            f"{method.upper()} {path}"
            for path, item in (document.get("paths") or {}).items() if isinstance(item, Mapping)
            for method in item if isinstance(item.get(method), Mapping)
        }
        self.document = document
        self.rules = rules
        self.seed = seed
        self.operations = operations
        self.result = result if result is not None else LifecycleResult()
        self.last: RecordedExchange | None = None
        self.last_body = b""
        self.last_request: RecordedRequest | None = None
        # A GPU name of this run only: the Relay can dispatch the run's tasks to no other node.
        self.gpu = f"relaycheck lifecycle GPU {secrets.token_hex(4)}"

    # --- one step ----------------------------------------------------------------------------------
    def step(
        self,
        label: str,
        description: str,
        *,
        path_parameters: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        signer: Signer | None = None,
        multipart: list[tuple[str, tuple[str, bytes, str]]] | None = None,
        setup: bool = False,
        reject: str | None = None,
        attempt: bool = False,
    ) -> Any:
        """Sign (when the operation is signed) and send one request; its JSON ``data`` when accepted,
        else stop the flow.

        ``setup``: a refusal (4xx) means the target is not configured for the flow (a note);
        otherwise it is a ``lifecycle_accepted`` finding. ``reject``: the step MUST instead be
        refused with 400 naming that field (``lifecycle_rejected`` when it is not). ``attempt``: one of
        several candidate requests; a refusal returns None (``self.last`` holds the answer) for the
        caller to try the next one.
        """
        if label not in self.labels:
            raise _Stop(f"{label}: not an operation of the document")
        method, path = label.split(" ", 1)
        spec = self.specs.get(label)
        params = dict(path_parameters or {})
        q: dict[str, Any] = dict(query or {})
        b: Any = dict(body) if body is not None else None
        if spec is not None:
            signed = sign_parts(spec, signer or self.actor, params, q, b if b is not None else {})
            params, q = signed.path_parameters, signed.query
            if spec.carrier == "body":
                b = signed.body
        request = RecordedRequest(operation=label, method=method, path=path, path_parameters=params,
                                  query=list(q.items()), body=b, has_body=b is not None and multipart is None)
        self.last_request = request
        url = request.url(self.base_url)
        headers: dict[str, str] = {}
        content: bytes | None = None
        sent = time.time()
        try:
            if multipart is not None:
                # gin's form binding: lower-case form keys, one value per list item.
                form = [(str(k).lower(), _form_text(v)) for k, v in (b or {}).items() if not isinstance(v, list)]
                form += [(str(k).lower(), str(item)) for k, v in (b or {}).items() if isinstance(v, list)
                         for item in v]
                built = self.client.build_request(method, url, data=dict(_grouped(form)), files=multipart)
                content = built.read()
                headers = {"Content-Type": built.headers["content-type"]}
                response = self.client.send(built)
            else:
                if b is not None:
                    content = json.dumps(b).encode()
                    headers = {"Content-Type": "application/json"}
                response = self.client.request(method, url, content=content, headers=headers)
        except httpx.HTTPError as exc:
            exchange = RecordedExchange(method=method, url=url, request_headers=headers, request_body_b64=b64(content),
                                        status=None, response_headers={}, response_body_b64=None,
                                        elapsed_s=time.time() - sent,
                                        error=bounded.error_text(exc))
            self._record(label, exchange)
            check = bounded.finding_check(exc)
            self._finding(label, check, BUILTIN_RULES[check], f"{description}: {bounded.describe_httpx_error(exc)}",
                          request=request, exchange=exchange)
            raise _Stop() from None
        received = time.time()
        exchange = RecordedExchange(
            method=method, url=url, request_headers=headers, request_body_b64=b64(content[:65536] if content else None),
            status=response.status_code, response_headers={k.lower(): v for k, v in response.headers.items()},
            response_body_b64=b64(response.content[:65536]), elapsed_s=received - sent,
        )
        self._record(label, exchange)
        self.last_body = response.content
        self._judge(label, description, request, exchange, body=response.content, sent=sent, received=received)
        status = response.status_code
        if reject is not None:
            named = _field_name(response.content)
            # A refusal the served document declares for this operation (a 409, say) is its answer
            # here; its body is judged against the declaration above. Only where the document says
            # nothing more is the Relay's habit (400 naming the field) expected.
            declared = declared_refusals(self.document, method, path)
            if status not in declared and (status != 400 or (named or "").lower() != reject.lower()):
                also = f" or one of the declared {sorted(declared)}" if declared else ""
                self._finding(label, f"{TABLE}_rejected", REJECT_RULE,
                              f"{label} with {description}: got {status} naming {named!r}, expected 400 naming "
                              f"{reject!r}{also}", request=request, exchange=exchange)
            return None
        if 200 <= status < 300:
            if response.headers.get("content-type", "").startswith("application/json"):
                try:
                    return json.loads(response.content).get("data")
                except (ValueError, AttributeError):
                    return None
            return response.content
        if attempt:
            return None
        if setup and status == 400 and validation_refused(response.content):
            # The target's configuration refuses with a state answer (funds, task schema); a
            # validator tag or a parse error on this signed, funded, valid request is the Relay's fault.
            self._finding(label, f"{TABLE}_accepted", RULE, f"{label} with {description}: refused as invalid "
                          f"input with 400: {response.text[:200]}", request=request, exchange=exchange)
            raise _Stop()
        if setup and 400 <= status < 500:
            raise _Stop(f"{label} ({description}) refused with {status}: {response.text[:200]}")
        if status < 500:
            self._finding(label, f"{TABLE}_accepted", RULE, f"{label} with {description}: got {status}: "
                          f"{response.text[:200]}", request=request, exchange=exchange)
        raise _Stop()

    def _record(self, label: str, exchange: RecordedExchange) -> None:
        self.last = exchange
        if label in self.operations:
            self.result.statuses.setdefault(label, []).append(exchange.status)

    def _judge(self, label: str, description: str, request: RecordedRequest, exchange: RecordedExchange, *,
               body: bytes, sent: float, received: float) -> None:
        status = exchange.status or 0
        what = f"{label} with {description}"
        if status >= 500:
            self._finding(label, "not_a_server_error", BUILTIN_RULES["not_a_server_error"], f"{what}: got {status}",
                          request=request, exchange=exchange)
        # Many of these answers are reached by no other phase: judge them as the engine would.
        for check, rule, message in answer_checks.conformance(self.document, request.method, request.path, status,
                                                              headers=exchange.response_headers, body=body):
            self._finding(label, check, rule, f"{what}: {message}", request=request, exchange=exchange)
        if self.rules is None:
            return
        parsed = relay_checks.Exchange(method=request.method, path=request.path, status=status,
                                       headers=exchange.response_headers, body=body, query=dict(request.query),
                                       sent_at=sent, received_at=received)
        for name, message in relay_checks.evaluate(parsed, self.rules):
            self._finding(label, name, relay_checks.RULES_BY_NAME[name].summary, f"{what}: {message}",
                          request=request, exchange=exchange)

    def _finding(self, label: str, check: str, rule: str, message: str, *, request: RecordedRequest,
                 exchange: RecordedExchange | None) -> None:
        if label not in self.operations:
            return
        self.result.findings.append(Finding(
            operation=label, check=check, rule=rule, message=message, phase=f"probe:{TABLE}", request=request,
            exchange=exchange, expect={"accept": True, "table": TABLE}, seed=self.seed,
        ))

    # --- the flows ---------------------------------------------------------------------------------
    def fund(self) -> None:
        if self.prefunded and TRANSFER not in self.labels:
            return  # a Relay without transfers (24ffc26): the fixture credited the actor at start
        self.step("POST /v1/balance/{from}/transfer", "the signer funding the lifecycle account",
                  path_parameters={"from": self.payer.address},
                  body={"to": self.actor.address, "value": str(ACTOR_FUNDS)}, signer=self.payer, setup=True)

    def join(self) -> None:
        address = self.actor.address
        node = {"gpu_name": self.gpu, "gpu_vram": 24, "model_ids": [SD_MODEL, LLM_MODEL], "version": "2.5.2"}
        if self._body_declares(JOIN_V2, NETWORK_KEY):
            self.join_v2(node)
        else:
            self.step("POST /v1/node/{address}/join", f"a node joining with {self.gpu!r}",
                      path_parameters={"address": address}, body=node, setup=True)
        self.step("POST /v1/node/{address}/version", "the joined node's new version",
                  path_parameters={"address": address}, body={"version": "2.5.3"})
        if "POST /v2/node/{address}/capabilities" in self.labels:
            self.step("POST /v2/node/{address}/capabilities", "the joined node's complete capabilities",
                      path_parameters={"address": address}, body={**node, "version": "2.5.3"})

    def _body_declares(self, label: str, name: str) -> bool:
        """The operation is served and its signed body has the property ``name``: v2 join names its
        network from the 24ffc26 line on (2.5's v2 join has none, and 2.5 nodes join through v1)."""
        spec = self.specs.get(label)
        return label in self.labels and spec is not None and any(
            f.location == "body" and f.name == name for f in spec.fields)

    def join_candidates(self) -> tuple[list[str], list[int]]:
        """The networks and stakes a v2 join offers, from what the Relay itself publishes.

        Networks: the values under ``network`` in the Relay's own answers (node lists, withdrawal
        networks, delegations), the most frequent first: the network most nodes are on is the one
        the Relay most surely takes. Stakes: the Relay compares ``staking`` with what the chain says
        the address has staked, which only the chain knows. The walk offers first 0, which v2 join
        replaces by the Relay's own ``stake_amount`` (api/v2/nodes/join.go:105-109), the stake a node
        is configured to put up; then the operator stakes the Relay reports of its nodes
        (``operator_staking``, ``operator_stake_amount``) that several nodes share (a configured
        amount, where a stake only one node has is that node's own), the most common first; last the
        public network's ``stake_amount`` (``NODE_STAKE``) spelt out. An actor the target's chain
        knows no such stake of is not joined: a run note, not a finding."""
        from relaycheck.contract.discovery import published

        counts = published(self.client, self.base_url, self.document, self.payer,
                           frozenset({NETWORK_KEY, *STAKE_KEYS}))
        networks = [str(v) for v, _ in counts[NETWORK_KEY].most_common() if isinstance(v, str)]
        stakes: Counter[int] = Counter()
        for key in STAKE_KEYS:
            for value, n in counts[key].items():
                amount = _wei(value)
                if amount:
                    stakes[amount] += n
        ranked = [0, *(v for v, n in stakes.most_common(JOIN_CANDIDATES) if n > 1)]
        if NODE_STAKE not in ranked:
            ranked.append(NODE_STAKE)
        return networks[:JOIN_CANDIDATES], ranked

    def join_v2(self, node: Mapping[str, Any]) -> None:
        """Join with each candidate network and stake until one is accepted: a refusal naming
        ``network`` moves on to the next network, one naming ``staking`` (or an unnamed chain error)
        to the next stake; any other refusal ends the walk with a note."""
        networks, stakes = self.join_candidates()
        if not networks:
            raise _Stop(f"{JOIN_V2}: the Relay's answers name no network to join")
        tried: list[str] = []
        for network in networks:
            for stake in stakes:
                if len(tried) >= MAX_JOINS:
                    break
                tried.append(f"{network}/{stake}")
                self.step(JOIN_V2, f"a node joining {network!r} staking {stake} with {self.gpu!r}",
                          path_parameters={"address": self.actor.address},
                          body={**node, "network": network, "staking": str(stake)}, attempt=True)
                status = self.last.status if self.last is not None else None
                if status is not None and 200 <= status < 300:
                    return
                named = (_field_name(self.last_body) or "").lower()
                if named == "network":
                    break
                if named not in ("staking", "") and validation_refused(self.last_body):
                    # A validator tag on this signed request of the document's shape is the Relay's fault.
                    self._finding(JOIN_V2, f"{TABLE}_accepted", RULE, f"{JOIN_V2} (network {network!r}, staking "
                                  f"{stake}) refused as invalid input: {self.last_body[:200].decode(errors='replace')}",
                                  request=self.last_request or RecordedRequest(operation=JOIN_V2, method="POST",
                                                                               path=JOIN_V2.split(" ", 1)[1]),
                                  exchange=self.last)
                    raise _Stop()
                if status is None or (named != "staking" and status < 500):
                    raise _Stop(f"{JOIN_V2} (network {network!r}, staking {stake}) refused with {status}: "
                                f"{self.last_body[:200].decode(errors='replace')}")
        raise _Stop(f"{JOIN_V2}: no network and stake the Relay publishes was accepted (tried {', '.join(tried)}); "
                    f"the walk's node stakes on the target's chain first")

    def _new_task(self, task_type: int, model: str, gpu: str, task_args: str,
                  checkpoint: bytes | None = None, *, creator: Signer | None = None) -> _Task:
        from eth_hash.auto import keccak

        task_id, nonce = secrets.token_bytes(32), secrets.token_bytes(32)
        commitment = "0x" + bytes(keccak(task_id + nonce)).hex()
        body: dict[str, Any] = {
            "task_args": task_args, "task_type": task_type, "nonce": "0x" + nonce.hex(), "task_model_ids": [model],
            "min_vram": 8, "required_gpu": gpu, "required_gpu_vram": 0, "task_version": "2.5.0", "task_size": 1,
            "task_fee": str(TASK_FEE), "timeout": 600,
        }
        files = None if checkpoint is None else [("checkpoint", ("checkpoint.zip", checkpoint, "application/zip"))]
        self.step("POST /v1/inference_tasks/{task_id_commitment}", f"a task of type {task_type} requiring {gpu!r}",
                  path_parameters={"task_id_commitment": commitment}, body=body, multipart=files, setup=True,
                  signer=creator)
        return _Task(commitment, task_id, nonce)

    def get_task(self, task: _Task) -> Mapping[str, Any]:
        data = self.step("GET /v1/inference_tasks/{task_id_commitment}", "the creator reading its task",
                         path_parameters={"task_id_commitment": task.commitment})
        return data if isinstance(data, Mapping) else {}

    def _dispatched(self, task: _Task) -> Mapping[str, Any]:
        view = self.get_task(task)
        if view.get("status") != STARTED or str(view.get("selected_node", "")).lower() != self.actor.address.lower():
            raise _Stop(f"task {task.commitment} was not started on the actor's node (status "
                        f"{view.get('status')!r}, node {view.get('selected_node')!r}): the node-side steps need it")
        return view

    def lora_task(self) -> None:
        from relaycheck import relay_crypto as crypto

        checkpoint = b"PK\x05\x06" + b"\x00" * 18  # an empty zip archive
        task = self._new_task(TASK_LORA, SD_MODEL, self.gpu, json.dumps({"relaycheck": "lifecycle"}),
                              checkpoint=checkpoint)
        path = {"task_id_commitment": task.commitment}
        self._dispatched(task)
        if "GET /v1/inference_tasks/{task_id_commitment}/selected_node" in self.labels:
            self.step("GET /v1/inference_tasks/{task_id_commitment}/selected_node",
                      "the creator reading the node its task runs on", path_parameters=path)
        got = self.step("GET /v1/inference_tasks/{task_id_commitment}/checkpoint", "the node reading the checkpoint",
                        path_parameters=path)
        if got != checkpoint:
            label = "GET /v1/inference_tasks/{task_id_commitment}/checkpoint"
            self._finding(label, f"{TABLE}_roundtrip", "a file read back MUST be the one uploaded",
                          f"{label}: the input checkpoint read back differs from the one uploaded with the task",
                          request=RecordedRequest(operation=label, method="GET", path=label.split(" ", 1)[1],
                                                  path_parameters=path), exchange=self.last)
        image = _png()
        score = "0x" + crypto.image_phash(image).hex()
        self.step("POST /v1/inference_tasks/{task_id_commitment}/score", "the node's score",
                  path_parameters=path, body={"score": score})
        self._validate(task)
        self.step("POST /v1/inference_tasks/{task_id_commitment}/results", "result files that hash to the score",
                  path_parameters=path, body={},
                  multipart=[("files", ("0.png", image, "image/png")),
                             ("checkpoint", ("checkpoint.zip", checkpoint, "application/zip"))])
        self.step("GET /v1/inference_tasks/{task_id_commitment}/results/{index}", "the creator reading result 0",
                  path_parameters={**path, "index": "0"})
        self.step("GET /v1/inference_tasks/{task_id_commitment}/results/checkpoint",
                  "the creator reading the result checkpoint", path_parameters=path)

    def _validate(self, task: _Task) -> None:
        from relaycheck import relay_crypto as crypto

        view = self.get_task(task)
        if view.get("status") != SCORE_READY:
            raise _Stop(f"task {task.commitment} is not score-ready after the score (status {view.get('status')!r})")
        key = self._actor_key
        proof, beta = crypto.vrf_prove(key, bytes.fromhex(str(view.get("sampling_seed", ""))[2:]),
                                       nonce=secrets.randbelow(2**255) + 1)
        if crypto.need_validation(beta):
            # One task in a hundred is drawn for validation by a group of three: not a single one.
            raise _Redraw(f"task {task.commitment} was drawn for group validation")
        self.step("POST /v1/inference_tasks/validate", "the creator's VRF proof", body={
            "task_id_commitments": [task.commitment], "task_id": "0x" + task.task_id.hex(),
            "vrf_proof": "0x" + proof.hex(), "public_key": "0x" + crypto.public_key_bytes(key).hex(),
        })

    def llm_task_error(self) -> None:
        task = self._new_task(TASK_LLM, LLM_MODEL, self.gpu, json.dumps({"messages": []}))
        self._dispatched(task)
        if "POST /v2/tasks/{task_id_commitment}/node_error" in self.labels:
            self.step("POST /v2/tasks/{task_id_commitment}/node_error", "the selected node's diagnostic",
                      path_parameters={"task_id_commitment": task.commitment}, body={
                          "node_address": self.actor.address, "task_id_commitment": task.commitment,
                          "task_args": json.dumps({"messages": []}), "error_type": "RuntimeError",
                          "message": "relaycheck lifecycle: a diagnostic", "stack_trace": "no traceback",
                          "gpu_count": 1, "gpu_model": self.gpu, "gpu_vram_mb": 24 * 1024,
                          "executor_mode": "device_map", "captured_at": int(time.time()),
                      })
        self.step("POST /v1/inference_tasks/{task_id_commitment}/task_error", "the node reporting a task error",
                  path_parameters={"task_id_commitment": task.commitment}, body={"task_error": 1})
        # The creator's validation ends the task (aborted, fee refunded) and frees the node.
        view = self.get_task(task)
        if view.get("status") == 3:
            key = self._actor_key
            from relaycheck import relay_crypto as crypto

            proof, beta = crypto.vrf_prove(key, bytes.fromhex(str(view.get("sampling_seed", ""))[2:]), nonce=7)
            if crypto.need_validation(beta):
                raise _Redraw(f"task {task.commitment} was drawn for group validation")
            self.step("POST /v1/inference_tasks/validate", "the creator validating an errored task", body={
                "task_id_commitments": [task.commitment], "task_id": "0x" + task.task_id.hex(),
                "vrf_proof": "0x" + proof.hex(), "public_key": "0x" + crypto.public_key_bytes(key).hex(),
            })

    def queued_abort(self, creator: Signer | None = None) -> None:
        task = self._new_task(TASK_LLM, LLM_MODEL, f"{self.gpu} (absent)", json.dumps({"messages": []}),
                              creator=creator)
        if creator is not None:
            self.step("GET /v1/inference_tasks/{task_id_commitment}", "the creator reading its queued task",
                      path_parameters={"task_id_commitment": task.commitment}, signer=creator)
        self.step("POST /v1/inference_tasks/{task_id_commitment}/abort_reason", "the creator aborting a queued task",
                  path_parameters={"task_id_commitment": task.commitment},
                  body={"abort_reason": creator_abort_reason(self.document)}, signer=creator)

    def creator_only(self) -> None:
        """A Relay without the transfer route (24ffc26 funds relay accounts by deposit) cannot fund the
        actor: the signer itself, whose funds are the target's setup, creates a task and aborts it."""
        self.queued_abort(creator=self.payer)

    def pause_resume_quit(self) -> None:
        path = {"address": self.actor.address}
        self.step("POST /v1/node/{address}/pause", "the idle node pausing", path_parameters=path, body={})
        self.step("POST /v1/node/{address}/resume", "the paused node resuming", path_parameters=path, body={})
        self.step("POST /v1/node/{address}/quit", "the idle node quitting", path_parameters=path, body={})

    def worker(self) -> None:
        path = {"version": f"0.0.{secrets.randbelow(10**9)}"}
        self.step("DELETE /v1/worker/{version}", "a worker version nobody joined with", path_parameters=path,
                  reject="version")
        self.step("POST /v1/worker/{version}", "a worker joining", path_parameters=path)
        self.step("DELETE /v1/worker/{version}", "the worker leaving", path_parameters=path)

    def admin_read(self, admin: Signer) -> None:
        self.step("GET /v2/incentive/nodes/all", "the Relay's admin account", query={"period": "Day"}, signer=admin)

#: models.TaskAbortReason a creator aborts with: 2.5 takes any (its enum ends at 4, TaskFeeTooLow; 1 is
#: Timeout), 24ffc26 only CreatorCancelled (7) (api/v1/inference_tasks/abort_task.go:54).
ABORT_REASON_2_5, ABORT_CREATOR_CANCELLED = 1, 7


def creator_abort_reason(document: Mapping[str, Any]) -> int:
    """The reason the served Relay line accepts, by the pinned snapshot the document is nearest to: the
    document declares abort_reason a bare integer on both lines, so only the line tells them apart."""
    from relaycheck.contract.documents import document_version

    return ABORT_REASON_2_5 if document_version(document) == "2.5.3" else ABORT_CREATOR_CANCELLED


def _field_name(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    data = doc.get("data") if isinstance(doc, dict) else None
    name = data.get("field_name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def _wei(value: Any) -> int:
    """A stake the Relay wrote as a decimal wei string or integer; 0 when it is neither."""
    try:
        return max(int(str(value)), 0)
    except ValueError:
        return 0


def _form_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            out[key] = [*(out[key] if isinstance(out[key], list) else [out[key]]), value]
        else:
            out[key] = value
    return out


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _node_flows(walk: Lifecycle, *, last_attempt: bool) -> bool:
    """Run the node and task flows in order; True when a draw asks for another actor."""
    flows = [walk.fund, walk.join, walk.lora_task, walk.llm_task_error, walk.queued_abort, walk.pause_resume_quit]
    for flow in flows:
        try:
            flow()
        except _Redraw as redraw:
            if not last_attempt:
                return True
            walk.result.notes.append(f"{redraw.note} {ATTEMPTS} times in a row; the single-task flow ends here")
            return False
        except _Stop as stop:
            if stop.note:
                walk.result.notes.append(stop.note)
            if flow == walk.fund and "not an operation of the document" in stop.note:
                try:
                    walk.creator_only()
                except _Stop as creator_stop:
                    if creator_stop.note:
                        walk.result.notes.append(creator_stop.note)
            if flow in (walk.fund, walk.join):
                return False  # without funds or a joined node no task can start
    return False


def run_lifecycle(
    base_url: str,
    document: Mapping[str, Any],
    signer: Signer,
    rules: relay_checks.RuleContext | None,
    *,
    admin: Signer | None,
    timeout: float,
    seed: int | None,
    operations: set[str],
    funded_keys: tuple[bytes, ...] = (),
) -> LifecycleResult:
    """Walk every flow whose operations are selected; each flow stops at its first refusal.

    ``funded_keys``: actor keys the target funded already (one per attempt), for a Relay that has no
    transfer operation to fund a fresh actor with."""
    if not operations & {*OPERATIONS, *OPERATIONS_V2}:
        return LifecycleResult()
    result = LifecycleResult()
    with bounded.client(timeout, base_url=base_url) as client:
        for attempt in range(ATTEMPTS):
            walk = Lifecycle(client, base_url, document, signer, rules, seed=seed, operations=operations,
                             result=result, funded_key=funded_keys[attempt] if attempt < len(funded_keys) else None)
            if not _node_flows(walk, last_attempt=attempt == ATTEMPTS - 1):
                break
        try:
            walk.worker()
        except _Stop as stop:
            if stop.note:
                walk.result.notes.append(stop.note)
        if admin is not None:
            try:
                walk.admin_read(admin)
            except _Stop as stop:
                if stop.note:
                    walk.result.notes.append(stop.note)
        else:
            walk.result.notes.append("GET /v2/incentive/nodes/all: no admin key (set RELAYCHECK_ADMIN_KEY to the "
                                     "Relay's account key) - only refusals are exercised")
    return walk.result
