// Example params for each NanoStory workflow, so a newcomer can start one with a click.

/** A short screenplay for the script-based workflows. */
export const SAMPLE_SCRIPT = `THE LIGHTHOUSE KEEPER'S DAUGHTER

EXT. ROCKY COAST - DAWN
Grey waves break against black rocks. A white lighthouse stands on the cliff, its lamp still turning.
LIN MEI (17, windswept hair, yellow raincoat) climbs the wet path with a lantern.

LIN MEI
(shouting into the wind)
Father! The boats are coming back!

INT. LIGHTHOUSE LAMP ROOM - CONTINUOUS
OLD CHEN (60s, grey beard, wool sweater) polishes the great lens. He does not turn around.

OLD CHEN
Then the light did its work. Come, help me put it to sleep.

Lin Mei sets the lantern down. Together they pull the brass lever; the lamp slows and stops.

EXT. HARBOUR - MORNING
Fishing boats glide into the harbour under a pink sky. Lin Mei waves from the pier; a young
fisherman, AH JUN (20), waves back and throws her a silver fish.

AH JUN
For the keeper's table!

Lin Mei laughs and catches it with both hands.`;

/** Example params by workflow type. */
export const SAMPLES = {
  storyboard_generation: {
    scriptTitle: "The Lighthouse Keeper's Daughter",
    scriptContent: SAMPLE_SCRIPT,
  },
  character_extraction: { scriptContent: SAMPLE_SCRIPT },
  scene_extraction: { scriptContent: SAMPLE_SCRIPT },
  script_to_storyboard: { scriptContent: SAMPLE_SCRIPT },
  character_views_generation: {
    characterName: 'Lin Mei',
    appearance: 'Seventeen, slim, long black windswept hair, yellow raincoat over a grey sweater, rubber boots',
    personality: 'Brave, cheerful, stubborn',
    description: "The lighthouse keeper's daughter",
    style: 'anime',
  },
  scene_image_generation: {
    sceneName: 'Lighthouse on the cliff',
    description: 'A white lighthouse on a black rocky cliff above a stormy sea',
    environment: 'Rocky coast, wet stone path, fishing boats far out at sea',
    lighting: 'Dawn, cold blue light, the lamp still glowing',
    mood: 'Lonely but hopeful',
    style: 'cinematic realism',
  },
  frame_generation: {
    prompt: 'Lin Mei in a yellow raincoat climbs a wet cliff path towards a lighthouse at dawn, lantern in hand',
  },
  scene_video: {
    prompt: 'Fishing boats glide into a harbour under a pink morning sky; a girl waves from the pier',
    duration: 5,
  },
  prompt_generate: {
    description: 'A lighthouse at dawn, waves breaking on black rocks',
    kind: 'image',
    style: 'watercolour',
  },
  script_only: {
    title: "The Lighthouse Keeper's Daughter",
    description: 'A girl and her father keep the light burning for the fishing boats in a storm',
    length: 'short',
    episodeNumber: 1,
  },
  single_frame_generation: {
    storyboardId: 2,
    description: 'The white lighthouse on the cliff at dawn, its lamp still turning',
  },
  smart_parse: {
    apiDoc: 'Host: api.example.com\nPOST /v1/images/generations\nAuthorization: Bearer <key>\n{"model": "example-image-1", "prompt": "...", "size": "1024x1024"}\nResponse: {"data": [{"url": "<image URL>"}]}',
  },
  camera_run_generation: {
    storyboardId: 3,
    description: 'Lin Mei climbs the wet cliff path towards the lighthouse, lantern in hand',
    shotType: 'wide shot',
    hasAction: true,
  },
  batch_frame_generation: {
    scriptId: 1,
    storyboards: [
      { id: 1, prompt: 'Lin Mei climbs the wet cliff path at dawn, lantern in hand', hasAction: true },
      { id: 2, description: 'The lighthouse lamp room, brass and glass, morning light' },
    ],
  },
  batch_scene_video_generation: {
    scriptId: 1,
    storyboards: [
      { id: 1, prompt: 'Fishing boats glide into the harbour under a pink sky', duration: 4 },
      { id: 2, description: 'Ah Jun throws a silver fish; Lin Mei catches it and laughs', hasAction: true },
    ],
  },
};
