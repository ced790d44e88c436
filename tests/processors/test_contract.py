"""Every registered processor passes the shared contract: bad settings refused at start-up, success,
retryable failure, permanent failure, secrets never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.processors.contract import RecordingHarness, harness_for

from herald.processors import Delivery, DeliveryResult, registered_processors
from herald.processors.testing import RecordingProcessor, verify_contract


@pytest.mark.parametrize("kind", [c.kind for c in registered_processors()])
async def test_every_registered_processor_passes_the_contract(kind: str, tmp_path: Path) -> None:
    harness = harness_for(kind, tmp_path)
    assert harness is not None, f"processor kind {kind!r} has no contract harness in tests/processors/contract.py"
    await verify_contract(harness)


async def test_the_recording_processor_from_the_test_kit_passes_too() -> None:
    class Scripted(RecordingProcessor):
        async def deliver(self, delivery: Delivery) -> DeliveryResult:
            await super().deliver(delivery)
            return harness.next.pop(0)

    harness = RecordingHarness()
    harness.processor = Scripted
    await verify_contract(harness)


async def test_the_contract_catches_a_leaking_processor(tmp_path: Path) -> None:
    from tests.processors.contract import WebhookHarness

    from herald.processors._webhook import WebhookProcessor

    class Leaky(WebhookProcessor):
        async def deliver(self, delivery: Delivery) -> DeliveryResult:
            result = await super().deliver(delivery)
            secret = self.settings.endpoints[0].secret.get_secret_value()
            return DeliveryResult(result.outcome, f"{result.detail} (signed with {secret})")

    harness: Any = WebhookHarness()
    harness.processor = Leaky
    with pytest.raises(AssertionError, match="shows a secret"):
        await verify_contract(harness)


async def test_the_contract_catches_wrong_outcomes() -> None:
    class AlwaysOk(RecordingProcessor):
        pass

    harness = RecordingHarness()
    harness.processor = AlwaysOk
    with pytest.raises(AssertionError, match="expected retryable"):
        await verify_contract(harness)
