"""Dead letters: where an asynchronous invocation's event goes when every retry failed.

One SQS queue per source (a schedule target, a function's async invocations, a stream consumer,
an EventBridge rule target), so a message's queue says what it was and the runbook's redrive is
one command per queue (`infra/README.md`, "Redrive"). Every queue is encrypted (SSE-SQS: the
services that deliver dead letters, Scheduler, EventBridge and Lambda, can all write to it without
a key policy), keeps messages 14 days (the SQS maximum) and refuses plain-HTTP requests.

`Monitoring` alarms on any queue of the stack holding a message, so nothing dead-lettered goes
unnoticed.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cmlcm_infra.nag import acknowledge

#: The SQS maximum: two weeks to notice the alarm, read the messages and redrive them.
RETENTION = Duration.days(14)
#: How long Lambda keeps retrying an asynchronous event before it goes to the on-failure queue.
ASYNC_MAX_EVENT_AGE = Duration.hours(1)


def dead_letter_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    """An encrypted, TLS-only queue keeping messages 14 days; it is itself a dead-letter queue."""
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        retention_period=RETENTION,
        enforce_ssl=True,
        # Dead letters are evidence of a failure: an operator reads them before deleting them.
        removal_policy=RemovalPolicy.RETAIN,
    )
    acknowledge(
        queue,
        "AwsSolutions-SQS3",
        "This queue is itself a dead-letter queue (Scheduler, EventBridge or Lambda's on-failure "
        "destination); nothing consumes it, an operator reads and redrives it by hand, and an alarm "
        "fires as soon as it holds a message.",
    )
    return queue


class DeadLetters(Construct):
    """The stack's dead-letter queues, by source name (`queues`)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[str, sqs.Queue] = {}

    def queue(self, name: str) -> sqs.Queue:
        """The dead-letter queue of the source `name` (created on first use)."""
        if name not in self.queues:
            self.queues[name] = dead_letter_queue(self, name)
        return self.queues[name]

    def protect_async_invocations(
        self, function: lambda_.Function, *, retry_attempts: int = 2, max_event_age: Duration = ASYNC_MAX_EVENT_AGE
    ) -> sqs.Queue:
        """Asynchronous invocations of `function` (Scheduler, EventBridge) that fail after
        `retry_attempts` retries, or wait longer than `max_event_age`, land in its own queue
        (the on-failure destination record carries the request payload and the error)."""
        queue = self.queue(f"{function.node.id}AsyncFailures")
        function.configure_async_invoke(
            on_failure=destinations.SqsDestination(queue),
            retry_attempts=retry_attempts,
            max_event_age=max_event_age,
        )
        return queue
