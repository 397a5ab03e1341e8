"""
The chaos benchmark's check (benchmarks/chaos.py) against made-up answers:
a wrong followers list and a lost or duplicated mention count as failures.
"""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from benchmarks import chaos


class Answers:
    """
    What the servers answer, by (user, API path without the query).
    """

    def __init__(self) -> None:
        self.lists: dict[tuple[str, str], list[str]] = {}
        self.timelines: dict[tuple[str, str], list[str]] = {}

    def answer(self, path: str, user: str) -> Any:
        name = path.split("?", 1)[0]
        if name in ("/1.1/friends/list.json", "/1.1/followers/list.json"):
            key = name.rsplit("/", 2)[-2] + "/list"
            return {"users": [{"screen_name": h} for h in self.lists.get((user, key), [])]}
        texts = self.timelines.get((user, name.rsplit("/", 1)[1]), [])
        return [{"id": 1000 - i, "text": f"{token} hello"} for i, token in enumerate(texts)]


class FakeClient:
    answers = Answers()

    def __init__(self, federation: Any, timeout: float = 30) -> None:
        pass

    def request(self, server: str, method: str, path: str, user: str,
                data: Any = None) -> tuple[int, Any]:
        return 200, self.answers.answer(path, user)

    def close(self) -> None:
        pass


class CheckTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.answers = Answers()
        FakeClient.answers = self.answers
        self.patch(chaos, "Client", FakeClient)
        self.users = [chaos.User("ann", "s1"), chaos.User("bob", "s2")]
        self.ledger = chaos.Ledger()
        self.ledger.follows[("ann", "bob")] = True
        self.ledger.posts["chaos-bob-1"] = ("bob", 7)
        self.ledger.mentions["chaos-max-1"] = "ann"
        self.ledger.mentions["chaos-max-2"] = "ann"
        # An unacknowledged mention may or may not arrive.
        self.ledger.mentions["chaos-max-3"] = "ann"
        self.ledger.uncertain.add("chaos-max-3")
        self.answers.lists[("ann", "friends/list")] = ["bob@s2"]
        self.answers.lists[("bob", "followers/list")] = ["ann@s1"]
        self.answers.timelines[("ann", "home_timeline.json")] = ["chaos-bob-1"]
        self.answers.timelines[("bob", "user_timeline.json")] = ["chaos-bob-1"]
        self.answers.timelines[("bob", "home_timeline.json")] = ["chaos-bob-1"]
        self.answers.timelines[("ann", "mentions_timeline.json")] = [
            "chaos-max-1", "chaos-max-2"]

    def check(self) -> chaos.Check:
        return chaos.check(None, self.ledger, self.users)  # type: ignore[arg-type]

    def test_all_well(self) -> None:
        result = self.check()
        self.assertEqual(result.bad, 0, result.wrong())
        self.assertEqual((result.found, result.mentions_found), (3, 2))

    def test_followers_list_counts(self) -> None:
        self.answers.lists[("bob", "followers/list")] = []
        result = self.check()
        self.assertEqual(result.bad, 1)
        self.assertEqual(len(result.followers_wrong), 1)

    def test_lost_and_duplicated_mentions_count(self) -> None:
        self.answers.timelines[("ann", "mentions_timeline.json")] = [
            "chaos-max-1", "chaos-max-1", "chaos-max-3"]
        result = self.check()
        self.assertEqual(result.mentions_lost, ["chaos-max-2 in mentions of ann"])
        self.assertEqual(result.mentions_duplicated, ["chaos-max-1 x2 in mentions of ann"])
        self.assertEqual(result.bad, 2)
