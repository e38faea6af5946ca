//! `POST /api/v1/uploads` against S3 on moto (through ecsop-testkit).

use aws_sdk_s3::Client;
use futures::StreamExt;
use reqwest::StatusCode;

use crate::helpers::{Backend, TestApp, error_code, spawn_app, spawn_app_with, status_json};

/// An app whose uploads go to a fresh bucket in a fresh moto account; returns the app and an S3
/// client on that account.
async fn app_with_bucket(max_bytes: u64) -> (TestApp, Client, String) {
    app_with_bucket_and(max_bytes, |_| {}).await
}

async fn app_with_bucket_and(
    max_bytes: u64,
    tweak: impl FnOnce(&mut api_service::Config),
) -> (TestApp, Client, String) {
    let moto = ecsop_testkit::Moto::shared().await.expect("moto server (ecsop-testkit) starts");
    let account = moto.new_account();
    let sdk_config = account.sdk_config().await;
    let s3 = Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk_config).force_path_style(true).build());
    let bucket = format!("uploads-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    s3.create_bucket().bucket(&bucket).send().await.expect("bucket created");
    let app = spawn_app_with(
        Backend::Sqlite,
        |c| {
            c.upload_bucket = Some(bucket.clone());
            c.upload_max_bytes = max_bytes;
            c.s3_force_path_style = true;
            tweak(c);
        },
        Some(sdk_config),
    )
    .await;
    (app, s3, bucket)
}

async fn object(s3: &Client, bucket: &str, key: &str) -> (Vec<u8>, Option<String>) {
    let out = s3.get_object().bucket(bucket).key(key).send().await.expect("object exists");
    let content_type = out.content_type().map(str::to_owned);
    (out.body.collect().await.unwrap().into_bytes().to_vec(), content_type)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test]
async fn small_uploads_are_stored_under_a_generated_key() {
    let (app, s3, bucket) = app_with_bucket(10 * 1024 * 1024).await;
    let token = app.token().await;
    let bytes = pattern(100_000);
    let (status, body) =
        status_json(app.upload(Some(&token), "../../etc/Holiday Photo.PNG", bytes.clone()).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["key"].as_str().unwrap();
    assert!(key.starts_with("uploads/") && key.ends_with(".png"), "{key}");
    assert!(!key.contains("..") && !key.contains("etc") && !key.contains(' '), "{key}");
    assert_eq!(body["size"], 100_000);
    let (stored, content_type) = object(&s3, &bucket, key).await;
    assert_eq!(stored, bytes);
    assert_eq!(content_type.as_deref(), Some("image/png"));
}

#[tokio::test]
async fn large_uploads_use_multipart_and_round_trip() {
    // 12 MiB: three S3 parts (5 + 5 + 2 MiB).
    let (app, s3, bucket) = app_with_bucket(20 * 1024 * 1024).await;
    let token = app.token().await;
    let bytes = pattern(12 * 1024 * 1024 + 123);
    let (status, body) = status_json(app.upload(Some(&token), "big.bin", bytes.clone()).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["key"].as_str().unwrap();
    let (stored, _) = object(&s3, &bucket, key).await;
    assert_eq!(stored.len(), bytes.len());
    assert!(stored == bytes, "content differs");
    // No multipart upload is left pending.
    let pending = s3.list_multipart_uploads().bucket(&bucket).send().await.unwrap();
    assert!(pending.uploads().is_empty());
}

#[tokio::test]
async fn oversized_uploads_are_413_and_leave_nothing_behind() {
    let (app, s3, bucket) = app_with_bucket(6 * 1024 * 1024).await;
    let token = app.token().await;
    // Just over the limit: caught while streaming, after one part went to S3.
    let (status, body) = status_json(app.upload(Some(&token), "a.bin", pattern(6 * 1024 * 1024 + 1)).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(error_code(&body), "payload_too_large");
    // Far over: cut by the body limit.
    let (status, body) = status_json(app.upload(Some(&token), "b.bin", pattern(9 * 1024 * 1024)).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    let objects = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert!(objects.contents().is_empty(), "{:?}", objects.contents());
    let pending = s3.list_multipart_uploads().bucket(&bucket).send().await.unwrap();
    assert!(pending.uploads().is_empty(), "{:?}", pending.uploads());
}

#[tokio::test]
async fn uploads_need_a_token_a_file_part_and_a_multipart_body() {
    let (app, s3, bucket) = app_with_bucket(1024 * 1024).await;
    let (status, body) = status_json(app.upload(None, "a.txt", b"hello".to_vec()).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&body), "unauthorized");
    let token = app.token().await;

    let form = reqwest::multipart::Form::new().text("other", "x");
    let response =
        app.client.post(app.url("/api/v1/uploads")).bearer_auth(&token).multipart(form).send().await.unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let response = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert!(status.is_client_error(), "{status}");
    error_code(&body);

    let response = app
        .client
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(&token)
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nunterminated")
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let objects = s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert!(objects.contents().is_empty());
    // An empty file is fine.
    let (status, body) = status_json(app.upload(Some(&token), "empty", Vec::new()).await).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["size"], 0);
}

#[tokio::test]
async fn uploads_without_a_bucket_are_503() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.token().await;
    let (status, body) = status_json(app.upload(Some(&token), "a.txt", b"hello".to_vec()).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(&body), "unavailable");
}

/// The bucket's multipart uploads in progress.
async fn pending_uploads(s3: &Client, bucket: &str) -> usize {
    let listed = s3.list_multipart_uploads().bucket(bucket).send().await.expect("list multipart uploads");
    listed.uploads().len()
}

/// Starts an upload of 6 MiB (so a multipart upload is begun) whose body then stalls, and waits until
/// S3 holds the multipart upload. Returns the task sending it.
async fn stalled_upload(app: &TestApp, s3: &Client, bucket: &str) -> tokio::task::JoinHandle<()> {
    let token = app.token().await;
    let first = bytes::Bytes::from(pattern(6 * 1024 * 1024));
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(futures::stream::pending());
    let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(body)).file_name("big.bin");
    let form = reqwest::multipart::Form::new().part("file", part);
    let request = app.client.post(app.url("/api/v1/uploads")).bearer_auth(token).multipart(form);
    let task = tokio::spawn(async move {
        let _ = request.send().await;
    });
    for _ in 0..100 {
        if pending_uploads(s3, bucket).await > 0 {
            return task;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the upload never began a multipart upload");
}

async fn until_none_pending(s3: &Client, bucket: &str, what: &str) {
    for _ in 0..100 {
        if pending_uploads(s3, bucket).await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{what}: a multipart upload is still pending in the bucket");
}

#[tokio::test]
async fn an_upload_cut_short_by_the_client_or_the_timeout_leaves_no_multipart_upload() {
    // The client goes away mid-body.
    let (app, s3, bucket) = app_with_bucket(20 * 1024 * 1024).await;
    let client = stalled_upload(&app, &s3, &bucket).await;
    client.abort();
    until_none_pending(&s3, &bucket, "client gone").await;

    // The request timeout drops the handler mid-body (the client still waits).
    let (app, s3, bucket) = app_with_bucket_and(20 * 1024 * 1024, |c| c.request_timeout_secs = 1).await;
    let client = stalled_upload(&app, &s3, &bucket).await;
    until_none_pending(&s3, &bucket, "request timeout").await;
    client.abort();

    // Shutdown while an upload stalls: the aborts are waited for.
    let (app, s3, bucket) = app_with_bucket_and(20 * 1024 * 1024, |c| c.shutdown_timeout_secs = 1).await;
    let client = stalled_upload(&app, &s3, &bucket).await;
    drop(app);
    until_none_pending(&s3, &bucket, "shutdown").await;
    client.abort();
}

#[tokio::test]
async fn content_types_outside_the_allow_list_are_stored_as_downloads() {
    let (app, s3, bucket) = app_with_bucket(10 * 1024 * 1024).await;
    let token = app.token().await;
    for (given, stored, attachment) in [
        ("text/html", "application/octet-stream", true),
        ("image/svg+xml", "application/octet-stream", true),
        ("image/png", "image/png", false),
    ] {
        let part = reqwest::multipart::Part::bytes(b"<script>alert(1)</script>".to_vec())
            .file_name("page.html")
            .mime_str(given)
            .unwrap();
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = app.client.post(app.url("/api/v1/uploads")).bearer_auth(&token).multipart(form).send().await;
        let (status, body) = status_json(response.unwrap()).await;
        assert_eq!(status, StatusCode::CREATED, "{given}: {body}");
        assert_eq!(body["content_type"], stored, "{given}");
        let head = s3.head_object().bucket(&bucket).key(body["key"].as_str().unwrap()).send().await.expect("head");
        assert_eq!(head.content_type(), Some(stored), "{given}");
        assert_eq!(
            head.content_disposition() == Some("attachment"),
            attachment,
            "{given}: {:?}",
            head.content_disposition()
        );
    }
}
