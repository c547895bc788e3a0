/* SPDX-License-Identifier: MIT */
/* protocol.h: message types and close codes of the wire protocol
 * (shared/PROTOCOL.md). Error codes are tt_code in common.h. */
#ifndef TT_PROTOCOL_H
#define TT_PROTOCOL_H

#define TT_PROTOCOL_NAME "tutti.v1"
#define TT_PROTOCOL_VERSION 1

enum tt_msg_type {
	TT_MSG_HELLO = 1,
	TT_MSG_DEFINE = 2,
	TT_MSG_CREATE = 3,
	TT_MSG_ATTACH = 4,
	TT_MSG_DETACH = 5,
	TT_MSG_DELETE = 6,
	TT_MSG_SET = 7,
	TT_MSG_OBSERVE = 8,
	TT_MSG_UNOBSERVE = 9,
	TT_MSG_HISTORY = 10,
	TT_MSG_DESCRIBE = 11,
	TT_MSG_PING = 12,
	TT_MSG_CANCEL = 13,
	TT_MSG_HOOK = 14,
	TT_MSG_UNHOOK = 15,
	TT_MSG_HOOK_REPLY = 16,
	TT_MSG_DELETE_CLASS = 17,
	TT_MSG_SYNC_REPORT = 18,
	TT_MSG_INSPECT = 19,
	TT_MSG_KICK = 20,
	TT_MSG_RESULT = 64,
	TT_MSG_ERROR = 65,
	TT_MSG_UPDATE = 66,
	TT_MSG_DELETED = 67,
	TT_MSG_NOTICE = 68,
	TT_MSG_PONG = 69,
	TT_MSG_SNAPSHOT = 70,
	TT_MSG_SCHEDULED = 71,
	TT_MSG_CANCELLED = 72,
	TT_MSG_HOOK_CALL = 73,
	TT_MSG_CLASS_CHANGED = 74,
	TT_MSG_ROOM = 75
};

enum tt_close_code {
	TT_CLOSE_GOING_AWAY = 1001,
	TT_CLOSE_TOO_BIG = 1009,
	TT_CLOSE_SLOW_CONSUMER = 4001,
	TT_CLOSE_PROTOCOL_ERRORS = 4002,
	TT_CLOSE_UNAUTHORIZED = 4003,
	TT_CLOSE_TAKEN_OVER = 4004,
	TT_CLOSE_KICKED = 4005,
	/* the server cannot acknowledge what it answered: reconnect and resume
	 * (several nodes: another node wrote the same state first) */
	TT_CLOSE_RESYNC = 1012
};

#endif
