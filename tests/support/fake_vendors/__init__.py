"""Fakes of the vendors whose wire protocol is not OpenAI's: each speaks the vendor's
protocol and checks its authentication the way the vendor does (see each module)."""

from tests.support.fake_vendors.azure import FakeAzureOpenAI
from tests.support.fake_vendors.bedrock import FakeBedrock
from tests.support.fake_vendors.gemini import FakeGemini

__all__ = ["FakeAzureOpenAI", "FakeBedrock", "FakeGemini"]
