"""Karpenter interruption handling: an SQS queue fed by EventBridge rules.

With the queue set (`settings.interruptionQueue`), Karpenter sees a Spot interruption warning, a
rebalance recommendation, a scheduled maintenance (AWS Health), a capacity-reservation reclaim or a
stopping/terminating instance as it happens, and cordons, drains and replaces the node within the
notice instead of losing it unannounced.

The event patterns and queue policy are pure (`INTERRUPTION_EVENTS`, `event_pattern`,
`queue_policy`); `KarpenterInterruptionQueue` only wires them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.core.iam_documents import deny_insecure_transport, document, statement, to_json

# Karpenter drops messages older than this anyway: an interruption notice is worth minutes.
RETENTION_SECONDS = 300


@dataclass(frozen=True)
class InterruptionEvent:
    key: str  # resource-name suffix
    source: str
    detail_type: str
    description: str
    # Extra `detail` filter: only what Karpenter acts on reaches the queue.
    detail: dict[str, list[str]] = field(default_factory=dict)


# detail-types as published by EC2 and AWS Health for EventBridge (and in Karpenter's v1 CloudFormation).
INTERRUPTION_EVENTS: tuple[InterruptionEvent, ...] = (
    InterruptionEvent(
        "spot-interruption",
        "aws.ec2",
        "EC2 Spot Instance Interruption Warning",
        "Spot reclaims the instance in two minutes",
    ),
    InterruptionEvent(
        "rebalance",
        "aws.ec2",
        "EC2 Instance Rebalance Recommendation",
        "The Spot instance is at elevated risk of interruption",
    ),
    InterruptionEvent(
        "instance-state-change",
        "aws.ec2",
        "EC2 Instance State-change Notification",
        "An instance is stopping or terminating outside Karpenter",
    ),
    # Karpenter's parser drops every Health event but EC2 scheduled changes; filter them here already,
    # so other services' Health events in the account never reach the controller's queue.
    InterruptionEvent(
        "scheduled-change",
        "aws.health",
        "AWS Health Event",
        "Scheduled maintenance retires or reboots the instance",
        detail={"service": ["EC2"], "eventTypeCategory": ["scheduledChange"]},
    ),
    InterruptionEvent(
        "capacity-reservation-interruption",
        "aws.ec2",
        "EC2 Capacity Reservation Instance Interruption Warning",
        "An interruptible capacity reservation reclaims the instance",
    ),
)


def event_pattern(event: InterruptionEvent) -> dict[str, Any]:
    pattern: dict[str, Any] = {"source": [event.source], "detail-type": [event.detail_type]}
    if event.detail:
        pattern["detail"] = {k: list(v) for k, v in event.detail.items()}
    return pattern


def queue_policy(queue_arn: str, rule_arns: list[str], account_id: str) -> dict[str, Any]:
    """EventBridge may deliver only from our rules; SQS-internal delivery only within the account; TLS only."""
    return document(
        statement(
            "sqs:SendMessage",
            queue_arn,
            principal={"Service": "events.amazonaws.com"},
            conditions={"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
            sid="EventBridgeRulesOfThisCluster",
        ),
        statement(
            "sqs:SendMessage",
            queue_arn,
            principal={"Service": "sqs.amazonaws.com"},
            conditions={"StringEquals": {"aws:SourceAccount": account_id}},
            sid="SqsWithinAccount",
        ),
        deny_insecure_transport("sqs:*", queue_arn, principal="*", sid="DenyHTTP"),
    )


@dataclass(frozen=True)
class KarpenterInterruptionQueueArgs:
    """Built by `Karpenter` for its own queue, not from the stack: no `from_stack`."""

    cluster_name: str
    """Names the queue (`<cluster>-karpenter-interruption`) and the EventBridge rules."""
    account_id: str
    """The only account whose SQS service may deliver to the queue."""
    tags: dict[str, str]
    """Tags for the queue and the rules."""


class KarpenterInterruptionQueue(pulumi.ComponentResource):
    queue: aws.sqs.Queue
    rules: dict[str, aws.cloudwatch.EventRule]
    queue_name: pulumi.Output[str]
    queue_arn: pulumi.Output[str]

    def __init__(self, name: str, args: KarpenterInterruptionQueueArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("k8s-platform:karpenter:KarpenterInterruptionQueue", name, None, opts)
        cluster_name, account_id, tags = args.cluster_name, args.account_id, args.tags
        child = pulumi.ResourceOptions(parent=self)
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            name=f"{cluster_name}-karpenter-interruption",
            message_retention_seconds=RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            tags=tags,
            opts=child,
        )
        self.rules = {}
        for event in INTERRUPTION_EVENTS:
            rule = aws.cloudwatch.EventRule(
                f"{name}-{event.key}",
                name=f"{cluster_name}-karpenter-{event.key}",
                description=f"Karpenter ({cluster_name}): {event.description}",
                event_pattern=json.dumps(event_pattern(event)),
                tags=tags,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{event.key}-target",
                rule=rule.name,
                target_id="KarpenterInterruptionQueue",
                arn=self.queue.arn,
                opts=child,
            )
            self.rules[event.key] = rule
        policy = pulumi.Output.all(self.queue.arn, *[r.arn for r in self.rules.values()]).apply(
            lambda arns: to_json(queue_policy(arns[0], list(arns[1:]), account_id))
        )
        aws.sqs.QueuePolicy(f"{name}-policy", queue_url=self.queue.url, policy=policy, opts=child)
        self.queue_name = self.queue.name
        self.queue_arn = self.queue.arn
        self.register_outputs({"queueName": self.queue.name, "queueArn": self.queue.arn})
