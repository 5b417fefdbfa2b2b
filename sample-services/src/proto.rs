//! The messages and method paths of `proto/gateway.proto` (package `gateway`), written
//! out by hand in the form prost-build generates, so that building needs no `protoc`
//! and no build script. A unit test below checks them against the .proto file.

use serde::Serialize;

/// `gateway.AliveService/GetStatus`, as the HTTP/2 `:path` of the call.
pub const GET_STATUS_PATH: &str = "/gateway.AliveService/GetStatus";
/// `gateway.UserService/GetUsersByGroup`, as the HTTP/2 `:path` of the call.
pub const GET_USERS_BY_GROUP_PATH: &str = "/gateway.UserService/GetUsersByGroup";

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct GetStatusRequest {}

#[derive(Clone, Copy, PartialEq, Serialize, prost::Message)]
pub struct GetStatusResponse {
    #[prost(bool, tag = "1")]
    pub status: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GetUsersByGroupRequest {
    #[prost(string, tag = "1")]
    pub group: String,
}

#[derive(Clone, PartialEq, Serialize, prost::Message)]
pub struct User {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "2")]
    pub age: i32,
}

#[derive(Clone, PartialEq, Serialize, prost::Message)]
pub struct GetUsersByGroupResponse {
    #[prost(message, repeated, tag = "1")]
    pub users: Vec<User>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    const PROTO: &str = include_str!("../proto/gateway.proto");

    /// The .proto file with comments dropped and whitespace collapsed, so declarations
    /// can be looked up as one-line strings.
    fn normalized_proto() -> String {
        PROTO
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn matches_the_proto_file() {
        let proto = normalized_proto();
        for declaration in [
            "package gateway;",
            "service AliveService { rpc GetStatus(GetStatusRequest) returns (GetStatusResponse); }",
            "message GetStatusRequest {}",
            "message GetStatusResponse { bool status = 1; }",
            "service UserService { rpc GetUsersByGroup(GetUsersByGroupRequest) returns (GetUsersByGroupResponse); }",
            "message GetUsersByGroupRequest { string group = 1; }",
            "message User { string name = 1; int32 age = 2; }",
            "message GetUsersByGroupResponse { repeated User users = 1; }",
        ] {
            assert!(proto.contains(declaration), "proto lacks {declaration:?}");
        }
    }

    #[test]
    fn wire_format() {
        // Field 1 varint true; field 1 length-delimited strings/messages.
        assert_eq!(
            GetStatusResponse { status: true }.encode_to_vec(),
            [0x08, 0x01]
        );
        let users = GetUsersByGroupResponse {
            users: vec![User {
                name: "Al".into(),
                age: 20,
            }],
        };
        assert_eq!(
            users.encode_to_vec(),
            [0x0a, 0x06, 0x0a, 0x02, b'A', b'l', 0x10, 20]
        );
    }
}
