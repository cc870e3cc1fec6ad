//! NanoStory mode on MariaDB: NanoStory's tables (`fixtures/nanostory_tables.sql`, in the shape
//! of its `backend/initial_database.sql`) with a project, scripts, shots, a character and a
//! scene; the documented upgrade; then the server with `[nanostory]`. Workflows started with
//! an id alone read their row (a shot's prompt for `scene_video` from `storyboardId`), run to
//! completion through the API, and NanoStory's tables hold their results where NanoStory's
//! engine put them, checked column by column, each URL loading from the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Options, Server, error_body, is_terminal, run_on, token};
use nosyntask_store::testing::unmigrated_test_store;
use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement};
use serde_json::{Value, json};

const FIXTURE: &str = include_str!("fixtures/nanostory_tables.sql");

/// Where NanoStory's pages reach this server's `/files/`.
const MEDIA: &str = "https://media.nanostory.test";

/// User 1's project 3 (from the fixture) gets three scripts, shots, a character and a scene;
/// user 2 has a project and a shot of their own.
const ROWS: &str = "
INSERT INTO users (id, email, password_hash) VALUES (2, 'other@example.com', 'x');
INSERT INTO projects (id, user_id, name) VALUES (4, 2, 'other');
INSERT INTO scripts (id, user_id, project_id, episode_number, title, content, status) VALUES
  (40, 1, 3, 1, '第1集', '守塔人在风暴夜点亮灯塔。', 'completed'),
  (41, 1, 3, 2, '第2集', '清晨，守塔人的女儿在礁石上捡到一只瓶子，瓶中有一封信。她跑回灯塔，把信交给父亲。', 'completed'),
  (42, 1, 3, 3, '第3集', '', 'generating'),
  (43, 2, 4, 1, 'x', 'x', 'completed'),
  (44, 1, 3, 4, '第4集', '两个镜头', 'completed');
INSERT INTO storyboards (id, project_id, script_id, idx, prompt_template, variables_json) VALUES
  (50, 3, 40, 0, '守塔人爬上螺旋楼梯', '{\"hasAction\": true, \"duration\": 4}'),
  (51, 3, 40, 1, '灯塔的光扫过海面', '{\"hasAction\": false}'),
  (52, 3, 40, 2, '浪花拍打礁石，远处有一艘船', '{\"hasAction\": true, \"duration\": 6}'),
  (60, 4, 43, 0, 'not yours', '{}'),
  (70, 3, 41, 0, 'an old shot storyboard_generation replaces', '{}'),
  (80, 3, 44, 0, '女儿推开灯塔的门', '{\"hasAction\": true}'),
  (81, 3, 44, 1, '父亲读信', '{\"hasAction\": false}');
INSERT INTO characters (id, user_id, project_id, name, appearance, personality, description,
  generation_status) VALUES
  (10, 1, 3, '阿澜', '短发，蓝色雨衣', '勇敢', '守塔人的女儿', 'pending');
INSERT INTO scenes (id, user_id, project_id, name, description, environment, lighting, mood) VALUES
  (20, 1, 3, '灯塔顶层', '灯室，巨大的透镜', '玻璃围成的圆形房间', '夜，灯光旋转', '孤独');
";

/// A column of a row, as text (`NULL` as `None`).
fn text(row: &QueryResult, column: &str) -> Option<String> {
    row.try_get::<Option<String>>("", column).unwrap()
}

async fn row(conn: &impl ConnectionTrait, sql: &str) -> QueryResult {
    conn.query_one_raw(Statement::from_string(DbBackend::MySql, sql))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no row: {sql}"))
}

async fn rows(conn: &impl ConnectionTrait, sql: &str) -> Vec<QueryResult> {
    conn.query_all_raw(Statement::from_string(DbBackend::MySql, sql))
        .await
        .unwrap()
}

/// The URL NanoStory's column should hold for a URL of a job read (an artifact on this
/// server, as the reader reaches it), after checking it loads.
async fn media(server: &Server, read: &Value) -> Option<String> {
    let url = read.as_str()?;
    let path = url
        .strip_prefix(&server.base)
        .filter(|path| path.starts_with("/files/"))
        .unwrap_or_else(|| panic!("an artifact of the server: {url}"));
    let response = server.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url} loads");
    Some(format!("{MEDIA}{path}"))
}

/// The result of the job's last step.
fn result(job: &Value) -> &Value {
    let tasks = job["tasks"].as_array().unwrap();
    &tasks.last().unwrap()["result_data"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_read_nanostorys_rows_and_write_their_results_there() {
    let Some(db) = unmigrated_test_store("mysql").await.unwrap() else {
        return;
    };
    let conn = db.store().connection();
    common::run_sql(conn, FIXTURE).await;
    common::run_sql(conn, ROWS).await;
    let dir = tempfile::tempdir().unwrap();
    let (ok, output) = run_on(db.url(), dir.path(), &["nanostory-upgrade"]);
    assert!(ok, "{output}");

    let server = Server::start_with(
        Options::default()
            .env("NOSYNTASK__NANOSTORY__DATABASE_URL", db.url())
            .env("NOSYNTASK__NANOSTORY__MEDIA_BASE_URL", MEDIA),
    );
    let user = token(1);

    // Ids of rows that are not the starter's, or not there, are refused naming the param.
    for (workflow, params, param) in [
        ("scene_video", json!({"storyboardId": 60}), "storyboardId"),
        ("scene_video", json!({"storyboardId": 999}), "storyboardId"),
        (
            "character_views_generation",
            json!({"characterId": 11}),
            "characterId",
        ),
        ("storyboard_generation", json!({"scriptId": 43}), "scriptId"),
    ] {
        let response = server
            .post("/api/workflows", &user)
            .json(&json!({"workflowType": workflow, "projectId": 3, "params": params}))
            .send()
            .await
            .unwrap();
        let body = error_body(response, 422).await;
        assert!(body.to_string().contains(param), "{workflow}: {body}");
    }

    let start = |workflow: &'static str, params: Value| {
        let server = &server;
        let user = &user;
        async move { server.start_job_in(user, 3, workflow, params).await }
    };
    let views = start("character_views_generation", json!({"characterId": 10})).await;
    let scene = start("scene_image_generation", json!({"sceneId": 20})).await;
    let frames = start("frame_generation", json!({"storyboardId": 50})).await;
    let single = start("single_frame_generation", json!({"storyboardId": 51})).await;
    let video = start("scene_video", json!({"storyboardId": 52})).await;
    let storyboard = start("storyboard_generation", json!({"scriptId": 41})).await;
    let batch = start(
        "batch_frame_generation",
        json!({"scriptId": 44, "overwriteFrames": true}),
    )
    .await;
    // Shots given in the request are painted, but another user's shot is not written.
    let foreign = start(
        "batch_frame_generation",
        json!({"storyboards": [{"id": 60, "prompt": "a lighthouse"}]}),
    )
    .await;
    let script = start(
        "script_only",
        json!({"title": "第3集", "description": "灯塔的秘密", "projectId": 3, "episodeNumber": 3}),
    )
    .await;
    let mut done = serde_json::Map::new();
    for (name, id) in [
        ("views", views),
        ("scene", scene),
        ("frames", frames),
        ("single", single),
        ("video", video),
        ("storyboard", storyboard),
        ("batch", batch),
        ("script", script),
        ("foreign", foreign),
    ] {
        let job = server
            .wait_job(&user, id, Duration::from_secs(60), is_terminal)
            .await;
        assert_eq!(job["status"], "completed", "{name}: {job}");
        assert_eq!(job["hook_error"], Value::Null, "{name}: {job}");
        done.insert(name.into(), job);
    }

    // The read params: the shot's prompt and length for scene_video, the character's and the
    // scene's descriptions, the script's content.
    let params = &done["video"]["input_params"];
    assert_eq!(params["description"], "浪花拍打礁石，远处有一艘船");
    assert_eq!(params["duration"], 6);
    let params = &done["views"]["input_params"];
    assert_eq!(params["characterName"], "阿澜");
    assert_eq!(params["appearance"], "短发，蓝色雨衣");
    assert_eq!(done["scene"]["input_params"]["lighting"], "夜，灯光旋转");
    assert_eq!(
        done["frames"]["input_params"]["prompt"],
        "守塔人爬上螺旋楼梯"
    );
    assert!(
        done["storyboard"]["input_params"]["scriptContent"]
            .as_str()
            .unwrap()
            .starts_with("清晨")
    );

    // characters: the three views, the front one as the main image, generation completed.
    let r = result(&done["views"]);
    let c = row(conn, "SELECT * FROM characters WHERE id = 10").await;
    let front = media(&server, &r["frontViewUrl"]).await;
    assert_eq!(text(&c, "front_view_url"), front);
    assert_eq!(
        text(&c, "side_view_url"),
        media(&server, &r["sideViewUrl"]).await
    );
    assert_eq!(
        text(&c, "back_view_url"),
        media(&server, &r["backViewUrl"]).await
    );
    assert_eq!(text(&c, "image_url"), front);
    assert_eq!(text(&c, "generation_status").as_deref(), Some("completed"));

    // scenes: the image, its prompt, generation completed.
    let r = result(&done["scene"]);
    let s = row(conn, "SELECT * FROM scenes WHERE id = 20").await;
    assert_eq!(text(&s, "image_url"), media(&server, &r["imageUrl"]).await);
    assert_eq!(
        text(&s, "generation_prompt").as_deref(),
        r["prompt"].as_str()
    );
    assert_eq!(text(&s, "generation_status").as_deref(), Some("completed"));

    // storyboards: first and last frames, a single frame, a video.
    let r = result(&done["frames"]);
    let shot = row(conn, "SELECT * FROM storyboards WHERE id = 50").await;
    assert_eq!(
        text(&shot, "first_frame_url"),
        media(&server, &r["startFrame"]).await
    );
    assert_eq!(
        text(&shot, "last_frame_url"),
        media(&server, &r["endFrame"]).await
    );
    let r = result(&done["single"]);
    let shot = row(conn, "SELECT * FROM storyboards WHERE id = 51").await;
    assert_eq!(
        text(&shot, "first_frame_url"),
        media(&server, &r["startFrame"]).await
    );
    assert_eq!(text(&shot, "last_frame_url"), None);
    let r = result(&done["video"]);
    let shot = row(conn, "SELECT * FROM storyboards WHERE id = 52").await;
    assert_eq!(
        text(&shot, "video_url"),
        media(&server, &r["videoUrl"]).await
    );
    assert_eq!(text(&shot, "first_frame_url"), None);

    // The batch: each shot's frames, the single-frame shot without a last frame.
    // (The step's own task comes first; its shots' items after it.)
    let results = done["batch"]["tasks"][0]["result_data"]["results"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(results.len(), 2, "{results:?}");
    for r in &results {
        let id = r["storyboardId"].as_i64().unwrap();
        let shot = row(conn, &format!("SELECT * FROM storyboards WHERE id = {id}")).await;
        assert_eq!(r["status"], "completed", "{r}");
        assert_eq!(
            text(&shot, "first_frame_url"),
            media(&server, &r["startFrame"]).await,
            "{id}"
        );
        assert_eq!(
            text(&shot, "last_frame_url"),
            media(&server, &r["endFrame"]).await,
            "{id}"
        );
    }

    // storyboard_generation: the script's shots replaced, in order, each with its shot; a
    // scene for each location.
    let shots = result(&done["storyboard"])["scenes"]
        .as_array()
        .unwrap()
        .clone();
    let saved = rows(
        conn,
        "SELECT * FROM storyboards WHERE script_id = 41 ORDER BY idx",
    )
    .await;
    assert_eq!(saved.len(), shots.len());
    for (i, (saved, shot)) in saved.iter().zip(&shots).enumerate() {
        assert_eq!(saved.try_get::<i32>("", "idx").unwrap(), i as i32);
        assert_eq!(saved.try_get::<i32>("", "project_id").unwrap(), 3);
        assert_eq!(
            text(saved, "prompt_template").as_deref(),
            shot["description"].as_str()
        );
        let variables: Value =
            serde_json::from_str(&text(saved, "variables_json").unwrap()).unwrap();
        assert_eq!(&variables, shot);
    }
    let mut locations: Vec<&str> = shots
        .iter()
        .filter_map(|s| s["location"].as_str())
        .filter(|l| !l.trim().is_empty())
        .collect();
    locations.dedup();
    assert!(!locations.is_empty(), "the shots name locations: {shots:?}");
    for location in locations {
        let scene = row(
            conn,
            &format!(
                "SELECT * FROM scenes WHERE project_id = 3 AND user_id = 1 AND name = '{location}'"
            ),
        )
        .await;
        assert_eq!(text(&scene, "source").as_deref(), Some("auto_extracted"));
        assert_eq!(
            scene.try_get::<Option<i32>>("", "script_id").unwrap(),
            Some(41)
        );
        let first = shots.iter().find(|s| s["location"] == location).unwrap();
        assert_eq!(
            text(&scene, "description").as_deref(),
            first["description"].as_str()
        );
    }

    // script_only: the script NanoStory's backend created for the episode.
    let r = result(&done["script"]);
    let s = row(conn, "SELECT * FROM scripts WHERE id = 42").await;
    assert_eq!(text(&s, "content").as_deref(), r["content"].as_str());
    assert!(!r["content"].as_str().unwrap().is_empty());
    assert_eq!(text(&s, "status").as_deref(), Some("completed"));
    assert_eq!(
        text(&s, "model_provider").as_deref(),
        r["provider"].as_str()
    );
    assert_eq!(
        s.try_get::<Option<i32>>("", "token_used")
            .unwrap()
            .map(i64::from),
        r["tokens"].as_i64()
    );

    // Another user's shot stays as it was, though the batch painted it.
    let painted = &done["foreign"]["tasks"][0]["result_data"]["results"][0];
    assert_eq!(painted["status"], "completed", "{painted}");
    let other = row(conn, "SELECT * FROM storyboards WHERE id = 60").await;
    assert_eq!(text(&other, "first_frame_url"), None);
    drop(server);
    db.cleanup().await;
}
