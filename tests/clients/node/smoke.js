// The smoke sequence with twitter-api-v2 (API v1.1) against a live distwit
// server.  Usage: node smoke.js BASE_URL REMOTE_ACCT CREDENTIALS_JSON
// CREDENTIALS_JSON: {"key", "secret", "alice": [token, secret], "bob": [...]}
// Prints one "ok" line per step; exits 1 with the reason on a failure.
// The remote user has the profile and the post of tests.test_clients
// (REMOTE_PROFILE, REMOTE_TEXT) on their server.
'use strict';
const assert = require('assert/strict');
const { TwitterApi, ApiResponseError } = require('twitter-api-v2');

const [base, remote, credentialsJson] = process.argv.slice(2);
const credentials = JSON.parse(credentialsJson);

function client(user, appSecret = credentials.secret) {
  const [accessToken, accessSecret] = credentials[user];
  const v1 = new TwitterApi({
    appKey: credentials.key, appSecret, accessToken, accessSecret,
  }).v1;
  v1._prefix = base + '/1.1/';  // the server instead of api.twitter.com
  return v1;
}

const REMOTE_NAME = 'Dave Remote';
const REMOTE_DESCRIPTION = 'far away';
const REMOTE_TEXT = "dave's post, from the other server";

const ids = (tweets) => tweets.map((t) => t.id_str);
const step = (name) => console.log('ok', name);
const textOf = (tweet) => tweet.full_text ?? tweet.text;

// What find() gives once it gives something, within 30 s (what comes from
// another server takes a moment).
async function eventually(find, what) {
  const deadline = Date.now() + 30000;
  for (;;) {
    const found = await find();
    if (found) return found;
    if (Date.now() > deadline) assert.fail(`${what}: not within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function expectError(promise, status, code) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof ApiResponseError, String(e));
    assert.equal(e.code, status);
    assert.deepEqual(e.errors.map((x) => x.code), [code]);
    return;
  }
  assert.fail(`expected an error ${status}/${code}`);
}

async function main() {
  const alice = client('alice');
  const bob = client('bob');
  const me = await alice.verifyCredentials();
  assert.equal(me.screen_name, 'alice');
  step('verify_credentials');

  const first = await alice.tweet('hello from twitter-api-v2');
  assert.equal(first.full_text, 'hello from twitter-api-v2');
  const question = await bob.tweet('@alice are you there?');
  const reply = await alice.reply('@bob yes', question.id_str);
  assert.equal(reply.in_reply_to_status_id_str, question.id_str);
  const thread = await alice.get(`statuses/conversation/${reply.id_str}.json`);
  assert.deepEqual(thread.map((t) => t.id_str), [question.id_str, reply.id_str]);
  assert.equal(thread[1].in_reply_to_status_id_str, question.id_str);
  step('update, reply and conversation');

  await alice.createFriendship({ screen_name: 'bob' });
  const posted = [];
  for (let i = 0; i < 5; i++) posted.push((await bob.tweet(`bob's post ${i}`)).id_str);
  const home = (await alice.homeTimeline({ count: 3 })).tweets;
  assert.deepEqual(ids(home), [posted[4], posted[3], posted[2]]);
  const lastId = BigInt(home[2].id_str) - 1n;
  const older = (await alice.homeTimeline({ count: 3, max_id: lastId.toString() })).tweets;
  assert.deepEqual(ids(older), [posted[1], posted[0], reply.id_str]);
  const newer = (await alice.homeTimeline({ since_id: posted[3] })).tweets;
  assert.deepEqual(ids(newer), [posted[4]]);
  const user = (await alice.userTimelineByUsername('bob', { count: 2 })).tweets;
  assert.deepEqual(ids(user), [posted[4], posted[3]]);
  const mentions = (await alice.mentionTimeline()).tweets;
  assert.deepEqual(ids(mentions), [question.id_str]);
  step('home, user and mentions timelines with since_id and max_id');

  const shown = await alice.singleTweet(first.id_str);
  assert.equal(shown.full_text, first.full_text);
  step('show');

  const users = await alice.users({ screen_name: 'alice,bob' });
  assert.deepEqual(users.map((u) => u.screen_name).sort(), ['alice', 'bob']);
  assert.equal((await alice.user({ screen_name: 'bob' })).screen_name, 'bob');
  step('users lookup and show');

  await alice.createFriendship({ screen_name: 'carol' });
  await alice.createFriendship({ screen_name: remote });
  assert.equal((await alice.user({ screen_name: remote })).screen_name, remote);
  const following = await alice.userFollowingIds({ count: 2 });
  await following.fetchLast(10);
  assert.equal(following.ids.length, 3);
  const followers = await bob.userFollowerIds();
  assert.deepEqual(followers.ids.map(String), [me.id_str]);
  await alice.destroyFriendship({ screen_name: 'carol' });
  await alice.destroyFriendship({ screen_name: remote });
  assert.equal((await alice.userFollowingIds()).ids.length, 1);
  step('follow and unfollow local and remote, ids through cursors');

  const rt = await alice.post(`statuses/retweet/${posted[0]}.json`);
  assert.equal(rt.retweeted_status.id_str, posted[0]);
  assert.equal(rt.retweeted_status.user.screen_name, 'bob');
  assert.equal(textOf(rt), "RT @bob: bob's post 0");
  const shownRt = await alice.singleTweet(rt.id_str);
  assert.equal(shownRt.retweeted_status.id_str, posted[0]);
  assert.equal(shownRt.retweet_count, 1);
  const ofMe = await bob.get('statuses/retweets_of_me.json');
  assert.deepEqual(ofMe.map((t) => [t.id_str, t.retweet_count]), [[posted[0], 1]]);
  await alice.createFriendship({ screen_name: remote });
  const remoteUser = await eventually(async () => {
    const u = await alice.user({ screen_name: remote });
    return u.name === REMOTE_NAME ? u : null;
  }, 'the remote profile');
  assert.equal(remoteUser.screen_name, remote);
  assert.equal(remoteUser.description, REMOTE_DESCRIPTION);
  const theirs = await eventually(async () => {
    const tweets = (await alice.homeTimeline()).tweets;
    return tweets.find((t) => textOf(t) === REMOTE_TEXT);
  }, 'the remote post');
  const remoteRt = await alice.post(`statuses/retweet/${theirs.id_str}.json`);
  assert.equal(remoteRt.retweeted_status.user.screen_name, remote);
  assert.equal(textOf(remoteRt.retweeted_status), REMOTE_TEXT);
  await alice.destroyFriendship({ screen_name: remote });
  step("retweets, retweets_of_me, a remote user's profile and post");

  await alice.deleteTweet(first.id_str);
  await expectError(alice.singleTweet(first.id_str), 404, 144);
  step('destroy');

  await expectError(alice.tweet('x'.repeat(141)), 403, 186);
  await expectError(client('alice', 'wrong secret').verifyCredentials(), 401, 32);
  step('errors for 141 characters and bad credentials');
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  if (e && e.data) console.error(JSON.stringify(e.data));
  process.exit(1);
});
