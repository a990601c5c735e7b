"""Interruption handling: five EventBridge patterns and the queue policy that lets only them deliver."""

from __future__ import annotations

from components.karpenter.interruption import INTERRUPTION_EVENTS, RETENTION_SECONDS, event_pattern, queue_policy

QUEUE = "arn:aws:sqs:us-east-1:222222222222:prod-eks-karpenter-interruption"
RULES = [f"arn:aws:events:us-east-1:222222222222:rule/prod-eks-karpenter-{e.key}" for e in INTERRUPTION_EVENTS]


def test_the_five_interruption_events_karpenter_handles():
    patterns = {(e.source, e.detail_type) for e in INTERRUPTION_EVENTS}
    assert patterns == {
        ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
        ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
        ("aws.ec2", "EC2 Instance State-change Notification"),
        ("aws.health", "AWS Health Event"),
        ("aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
    }
    assert len({e.key for e in INTERRUPTION_EVENTS}) == 5


def test_event_pattern_shape():
    spot = INTERRUPTION_EVENTS[0]
    assert event_pattern(spot) == {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]}


def _matches(pattern: dict, event: dict) -> bool:
    """EventBridge exact-value matching: every pattern key must be present, a list lists allowed values."""
    for key, want in pattern.items():
        if key not in event:
            return False
        if isinstance(want, dict):
            if not isinstance(event[key], dict) or not _matches(want, event[key]):
                return False
        elif event[key] not in want:
            return False
    return True


def _health_event(service: str, category: str) -> dict:
    return {
        "source": "aws.health",
        "detail-type": "AWS Health Event",
        "detail": {
            "service": service,
            "eventTypeCategory": category,
            "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
        },
    }


def test_health_rule_passes_only_ec2_scheduled_changes():
    # Karpenter's scheduled-change parser drops everything else; the rule keeps it out of the queue.
    [health] = [e for e in INTERRUPTION_EVENTS if e.source == "aws.health"]
    pattern = event_pattern(health)
    assert _matches(pattern, _health_event("EC2", "scheduledChange"))
    assert not _matches(pattern, _health_event("RDS", "scheduledChange"))
    assert not _matches(pattern, _health_event("EC2", "issue"))
    spot = {
        "source": "aws.ec2",
        "detail-type": "EC2 Spot Instance Interruption Warning",
        "detail": {"instance-id": "i-0abc", "instance-action": "terminate"},
    }
    assert _matches(event_pattern(INTERRUPTION_EVENTS[0]), spot)


def test_queue_policy_admits_only_our_rules_and_tls():
    doc = queue_policy(QUEUE, list(reversed(RULES)), "222222222222")
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    events = by_sid["EventBridgeRulesOfThisCluster"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert events["Action"] == "sqs:SendMessage" and events["Resource"] == QUEUE
    assert events["Condition"] == {"ArnEquals": {"aws:SourceArn": sorted(RULES)}}
    sqs = by_sid["SqsWithinAccount"]
    assert sqs["Principal"] == {"Service": "sqs.amazonaws.com"}
    assert sqs["Condition"] == {"StringEquals": {"aws:SourceAccount": "222222222222"}}
    deny = by_sid["DenyHTTP"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_retention_matches_karpenters_five_minutes():
    assert RETENTION_SECONDS == 300
