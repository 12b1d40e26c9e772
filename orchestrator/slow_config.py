"""Typed settings of the slow loop (section ``slow_loop`` of configs/creature.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.brain.actions import load_actions
from track2_voice.common.limits import ServerLimits
from track2_voice.common.settings import Strict


class IntentConfig(Strict):
    rules_file: str | None = Field(None, description="intents YAML; null = configs/intents.yaml")
    pause_frames: int = Field(8, ge=1, description="frames without text that end an utterance")
    mouth_quiet_frames: int = Field(5, ge=1, description="quiet-mouth frames that end one")
    mouth_quiet_level: float = Field(0.05, ge=0, le=1, description="mouth below this is quiet")
    repeat_window_s: float = Field(6.0, ge=0, description="same action+object fires once per")
    max_phrase_chars: int = Field(400, ge=40, description="rolling buffer cap")


class DialogueConfig(Strict):
    """Both sides of the conversation (docs/slow_loop.md, "Dialogue"): the user's requests,
    the creature's acceptances, the user's stop."""

    enabled: bool = Field(
        True,
        description="read the user's words (user_word events) beside the creature's: requests "
        "the creature accepts become calls, pronouns are resolved, the user's stop cancels",
    )
    rules_file: str | None = Field(None, description="dialogue YAML; null = configs/dialogue.yaml")
    request_hold_s: float = Field(
        10.0, gt=0, description="a user's request waits this long for the creature to accept"
    )
    accept_wait_s: float = Field(
        1.5,
        ge=0,
        description="an acceptance heard before the user's words arrived (the transcript lags) "
        "waits this long for them",
    )
    user_gap_s: float = Field(
        0.6,
        gt=0,
        description="user words further apart than this start a new utterance; a reply waits "
        "until the user's words have paused this long",
    )
    reply_sentences: int = Field(
        2,
        ge=1,
        description="a bare acceptance ('okay', 'sure') answers a request only within the "
        "creature's first this many sentences after it",
    )
    memory_s: float = Field(
        60.0, ge=0, description="'it' may refer to an object either side named this recently"
    )


class ActionsConfig(Strict):
    file: str | None = Field(
        None,
        description="action declarations YAML (the one home of the action list); "
        "null = configs/actions.yaml",
    )


class SafetyConfig(Strict):
    allowed_actions: list[str] | None = Field(
        None, description="actions a robot may be sent; null = every declared action"
    )
    min_confidence: float = Field(0.6, ge=0, le=1, description="intents below this are refused")
    rate_limit_calls: int = Field(4, ge=1, description="at most this many calls ...")
    rate_limit_window_s: float = Field(10.0, gt=0, description="... per this many seconds")

    def allowed(self, declared: tuple[str, ...]) -> frozenset[str]:
        """The allowlist against the declared actions (configs/actions.yaml or
        slow_loop.actions.file): every one of them unless the config names a subset."""
        if self.allowed_actions is None:
            return frozenset(declared)
        bad = [a for a in self.allowed_actions if a not in declared]
        if bad:
            raise ValueError(f"unknown action(s) {bad}; declared: {list(declared)}")
        return frozenset(self.allowed_actions)


class RobotConfig(Strict):
    enabled: bool = Field(True, description="serve the robot WebSocket channel")
    host: str = Field("127.0.0.1", description="bind address (loopback unless you mean it)")
    port: int = Field(8766, ge=0, le=65535, description="0 picks a free port")
    token: str | None = Field(
        None,
        min_length=16,
        description="robots present it as ?token= or 'Authorization: Bearer'; env "
        "CREATURE_ROBOT_TOKEN overrides; null: a random one, made on first run and kept in "
        "STATE_DIR/robot-token (mode 0600)",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="browser origins that may open /robot (robots send no Origin; default: none)",
    )
    on_duplicate: Literal["refuse", "take_over"] = Field(
        "refuse",
        description="a second connection with a connected robot's name: refused (close 4410), "
        "or it takes over (the old one is closed 4409); either way a robot_refused / "
        "robot_replaced event is recorded",
    )
    max_json_depth: int = Field(16, ge=2, le=512, description="deeper messages get an error")
    max_id_chars: int = Field(128, ge=8, description="longer call ids get an error")
    limits: ServerLimits = Field(
        default_factory=lambda: ServerLimits(max_connections=16),
        description="connections, header time, message size of the robot channel",
    )
    send_timeout_s: float = Field(2.0, gt=0, description="a robot that does not read is dropped")
    queue_size: int = Field(256, ge=1, description="messages buffered per robot connection")
    reclaim_s: float = Field(
        30.0,
        ge=0,
        description="a call whose robot's link dropped waits this long for a robot of the same "
        "name to come back, then ends failed (robot lost); it never goes to another body",
    )
    ack_timeout_s: float = Field(
        5.0,
        gt=0,
        description="a call sent to a connected robot that reports no status within this fails "
        "(and the robot is sent a cancel)",
    )
    hello_wait_s: float = Field(
        0.5,
        ge=0,
        description="a robot that sends no hello is taken as able to do everything after this "
        "(or at its first other message); until then it gets no call (docs/bodies.md)",
    )


class WebhookConfig(Strict):
    url: str | None = Field(None, description="POST every tool call here too (null = off)")
    timeout_s: float = Field(3.0, gt=0, description="per attempt")
    retries: int = Field(3, ge=0, description="attempts after the first")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay, doubled each time")
    queue_size: int = Field(256, ge=1, description="calls waiting for the webhook")
    secret: str | None = Field(
        None,
        min_length=16,
        description="HMAC-SHA256 key that signs each POST (X-Creature-Signature); env "
        "CREATURE_WEBHOOK_SECRET overrides; null: made on first run, kept in "
        "STATE_DIR/webhook-secret",
    )


class OutboxConfig(Strict):
    path: str | None = Field(
        None, description="SQLite file; null: STATE_DIR/outbox.sqlite3 (whatever the cwd)"
    )
    keep_settled_s: float = Field(
        7 * 24 * 3600.0,
        ge=0,
        description="settled calls older than this are deleted when the outbox opens (0 = keep)",
    )
    max_age_s: float = Field(
        300.0,
        ge=0,
        description="open calls older than this are cancelled (expired), never sent again (0 = never)",
    )
    queued_max_age_s: float = Field(
        10.0,
        ge=0,
        description="a call no robot has been sent within this of its making is cancelled "
        "(expired): a later run's robot never starts an old conversation's call (0 = never)",
    )


class AffectMapConfig(Strict):
    file: str | None = Field(None, description="affect YAML; null = configs/affect.yaml")


class InterpretConfig(Strict):
    """Interpreter mode (``mode: interpret``, docs/interpreter.md): the voice is a translation
    of a visitor's words."""

    intents: bool = Field(
        False,
        description="watch the translated words for commitments to act (off: they are a "
        "visitor's words, translated, not the creature's promises)",
    )
    captions: bool = Field(True, description="send the translated text to the face")
    caption_hold_s: float = Field(
        4.0, ge=0, description="a finished passage's caption stays this long"
    )
    caption_chars: int = Field(160, ge=20, description="the newest characters a caption shows")
    passage_gap_s: float = Field(
        2.0,
        gt=0,
        description="quiet on both sides that ends a passage when the model gives no end of "
        "passage",
    )


class PlannerConfig(Strict):
    """An optional LLM beside the rules (docs/planner.md): any OpenAI-compatible
    chat-completions endpoint with tools. It runs on the I/O loop as a task with a timeout, at
    most one request in flight; the voice never waits for it, and neither does a "stop"."""

    url: str | None = Field(
        None,
        description="chat-completions base URL, e.g. http://127.0.0.1:8080/v1 (null = no planner)",
    )
    model: str = Field("local", description="the model name sent with each request")
    api_key_env: str | None = Field(
        "CREATURE_PLANNER_KEY",
        description="environment variable holding the endpoint's API key (sent as a Bearer "
        "token; unset or empty: none sent); the key itself never goes in a config file",
    )
    policy: Literal["augment", "confirm", "planner"] = Field(
        "augment",
        description="augment: the planner may add calls the rules missed; confirm: a rules call "
        "waits for the planner's agreement; planner: the planner alone makes calls",
    )
    timeout_s: float = Field(4.0, gt=0, le=120, description="a request's whole time limit")
    confirm_wait_s: float = Field(
        3.0, gt=0, le=60, description="confirm: how long a rules call waits for the planner"
    )
    on_confirm_timeout: Literal["send", "drop"] = Field(
        "send",
        description="confirm: what a rules call does when the planner has not answered in time",
    )
    window_s: float = Field(
        60.0, gt=0, description="the dialogue the planner sees: the newest this many seconds"
    )
    max_turns: int = Field(16, ge=1, le=200, description="... and at most this many turns")
    max_tokens: int = Field(256, ge=16, le=4096, description="the answer's token budget")
    temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature")
    tool_choice: Literal["auto", "required"] = Field(
        "auto",
        description="auto: the planner may answer without a call; required: it must call the "
        "tool (sent as the named-function form, which llama.cpp, vLLM and OpenAI take; for "
        "models that never choose a tool by themselves)",
    )
    ground_objects: bool = Field(
        True,
        description="the tool's object slot is narrowed to the objects named in the dialogue "
        "window, and a proposal naming any other object is dropped",
    )
    max_response_bytes: int = Field(
        256 * 1024, ge=1024, description="a longer answer is refused before it is parsed"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.url)


class SlowLoopConfig(Strict):
    enabled: bool = Field(True, description="run intents, tools, state machine and affect")
    queue_size: int = Field(2048, ge=16, description="events buffered for the slow loop")
    actions: ActionsConfig = ActionsConfig()
    intents: IntentConfig = IntentConfig()
    dialogue: DialogueConfig = DialogueConfig()
    safety: SafetyConfig = SafetyConfig()
    robot: RobotConfig = RobotConfig()
    webhook: WebhookConfig = WebhookConfig()
    outbox: OutboxConfig = OutboxConfig()
    affect: AffectMapConfig = AffectMapConfig()
    planner: PlannerConfig = PlannerConfig()
    finish_wait_s: float = Field(
        8.0, ge=0, description="on exit, wait this long for a connected robot to finish"
    )

    def cross_check(self) -> list[tuple[str, str]]:
        """Problems a field alone cannot see, as (dotted key under slow_loop, message): the
        allowlist must name declared actions. Loads the actions file (errors name it)."""
        declared = load_actions(self.actions.file).names
        try:
            self.safety.allowed(declared)
        except ValueError as e:
            return [("safety.allowed_actions", str(e))]
        return []
