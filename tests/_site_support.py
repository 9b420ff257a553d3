"""A small but complete team registry for the site tests: stages with gates, promotions, demotions,
rollbacks, archived versions, metrics, approvals, bindings, lineage across models, and hostile strings."""

from __future__ import annotations

from pathlib import Path

from modelreg.registry import Registry

CONFIG = """\
format: 1
stages: [staging, canary, production]
policy:
  require_previous_stage: {canary: staging, production: staging}
  demote_to: {production: staging}
  gates:
    production:
      require_suites: [core-v1]
      thresholds:
        "core-v1.score": ">= 0.85"
        "latency.p95_ms": "<= 200"
      require_approvals: 1
"""

HOSTILE = "</script><script>alert('x')</script><img src=x onerror=alert(1)>"
ACTOR = "alice@example.com"

# faq-bot: (version, core-v1 score, f1, p95 ms)
FAQ = [("1.0.0", 0.81, 0.77, 240), ("1.1.0", 0.86, 0.80, 190), ("1.2.0", 0.88, 0.83, 180),
       ("1.3.0", 0.84, 0.82, 170), ("1.4.0", 0.91, 0.87, 160)]


def make_team_registry(project: Path) -> Registry:
    """Build the registry in ``project`` through the library and return it."""
    project.mkdir(parents=True, exist_ok=True)
    reg = Registry.init(project)
    (reg.path / "config.yaml").write_text(CONFIG)
    reg = Registry(reg.path)
    art = project / "models"
    art.mkdir(exist_ok=True)
    (art / "llama.bin").write_bytes(b"llama weights")
    reg.register("llama-base", "3.1.0", artifacts=[f"weights={art / 'llama.bin'}"], license="Llama-3.1",
                 meta={"family": "llama"}, actor="bob@example.com", allow_unknown_license=True)
    for i, (version, score, f1, p95) in enumerate(FAQ):
        f = art / f"faq-{version}.safetensors"
        f.write_bytes(f"faq weights {version}".encode())
        reg.register(
            "faq-bot", version, artifacts=[f"checkpoint={f}", "tokenizer=s3://team-models/faq/tokenizer.json"],
            params={"lr": 0.0003 * (i + 1), "epochs": 3 + i, "optimizer": {"name": "adamw", "betas": [0.9, 0.99]}},
            meta={"framework": "pytorch", "note": HOSTILE if version == "1.2.0" else "ok"},
            tags=["nlp"] if i % 2 == 0 else [], parents=["llama-base@3.1.0"], relation="fine_tune",
            description=f"FAQ model {version}" + ("\u2028line two" if version == "1.3.0" else ""),
            actor=ACTOR, check=False,
        )
        reg.set_metrics(f"faq-bot@{version}", "core-v1", {"score": score, "f1": f1, "passed": score >= 0.85},
                        actor=ACTOR)
        reg.set_metrics(f"faq-bot@{version}", "latency", {"p95_ms": p95}, actor=ACTOR)
    reg.approve("faq-bot@1.2.0", "production", comment="looks good", actor="carol@example.com")
    reg.approve("faq-bot@1.4.0", "production", comment=HOSTILE, actor="carol@example.com")
    reg.promote("faq-bot@1.0.0", "staging", actor=ACTOR, reason="first candidate")
    reg.promote("faq-bot@1.0.0", "production", actor=ACTOR, force=True, reason="launch (" + HOSTILE + ")")
    reg.promote("faq-bot@1.2.0", "staging", actor=ACTOR, reason="nightly eval passed")
    reg.promote("faq-bot@1.2.0", "production", expect="1.0.0", actor="carol@example.com", reason="better on core-v1")
    reg.promote("faq-bot@1.3.0", "staging", actor=ACTOR, reason="candidate")
    reg.promote("faq-bot@1.3.0", "canary", actor=ACTOR, reason="canary 5%")
    reg.rollback("faq-bot", "canary", to="1.2.0", reason="error rate up in canary", actor="oncall@example.com")
    reg.promote("faq-bot@1.4.0", "staging", actor=ACTOR, reason="nightly eval passed")
    reg.tag("faq-bot@1.4.0", add=["release-candidate"], actor=ACTOR)
    reg.bind("faq-bot@1.2.0", "openai", "ft:gpt-4o-mini:faq:1", endpoint="https://api.example.com/v1",
             params={"temperature": 0.2}, actor=ACTOR)
    reg.archive("faq-bot@1.1.0", reason="superseded; " + HOSTILE, actor=ACTOR)
    reg.register("faq-bot-small", "0.1.0", artifacts=["checkpoint=s3://team-models/faq-small/model.bin"],
                 parents=["faq-bot@1.2.0"], relation="distillation", actor=ACTOR, check=False, new_model=True)
    reg.register("faq-bot-small", "0.2.0", artifacts=["checkpoint=s3://team-models/faq-small/model2.bin"],
                 parents=["faq-bot@1.2.0", "faq-bot-small@0.1.0"], relation="distillation", actor=ACTOR, check=False,
                 new_model=True)
    reg.promote("faq-bot-small@0.2.0", "staging", actor=ACTOR, reason=HOSTILE)
    reg.set_model("faq-bot", {"description": "Answers customer FAQs <b>", "task": "qa", "owner": "nlp-team"},
                  actor=ACTOR)
    reg.rate("faq-bot@1.2.0", 4, comment="solid", actor="carol@example.com")
    reg.rate("faq-bot@1.2.0", 5, actor="dave@example.com")
    return reg
